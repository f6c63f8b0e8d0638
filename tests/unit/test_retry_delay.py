"""How long a failed message waits before it is delivered again."""

from __future__ import annotations

from netweave.contracts.streams import ConsumerDef
from netweave.runtime.bus import TransientError, redelivery_delay, retry_delay

ACK_WAIT = ConsumerDef.model_fields["ack_wait_seconds"].default
MAX_DELIVER = ConsumerDef.model_fields["max_deliver"].default


def test_a_failing_handler_backs_off_from_half_a_second_to_thirty() -> None:
    assert [redelivery_delay(n) for n in (1, 2, 3, 7, 20)] == [0.5, 1.0, 2.0, 30.0, 30.0]
    assert retry_delay(RuntimeError("boom"), 3, ACK_WAIT) == 2.0


def test_waiting_for_an_earlier_event_outlasts_a_dead_replica_holding_it() -> None:
    # The earlier event comes back only after ack_wait when the replica that had it died:
    # the later one must still be retried by then, with room for the earlier to be handled.
    # First retries come soon: usually the earlier event is merely a moment behind.
    waiting = TransientError("subscription s1 not known yet", delay=0.25)
    delays = [retry_delay(waiting, n, ACK_WAIT) for n in range(1, MAX_DELIVER)]
    assert delays[:3] == [0.25, 0.5, 1.0]
    assert max(delays) == ACK_WAIT
    assert sum(delays) > 2 * ACK_WAIT
