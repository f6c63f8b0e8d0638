-- One database per service: a service never reads another's (docs/deploy.md).
-- Run once by the postgres image on an empty data volume.
CREATE DATABASE netweave_order_api;
CREATE DATABASE netweave_inventory;
CREATE DATABASE netweave_provisioner;
CREATE DATABASE netweave_subscriptions;
CREATE DATABASE netbox;
