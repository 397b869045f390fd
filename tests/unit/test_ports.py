"""Test ports come from below the ephemeral range, so no outgoing connection takes one before its listener starts."""

from fapiao.adapters.kafka import _ephemeral_floor, free_port, free_ports


def test_ports_are_below_the_ephemeral_range_and_never_handed_out_twice():
    floor = _ephemeral_floor()
    blocks = [free_ports(5) for _ in range(50)]
    singles = [free_port() for _ in range(50)]
    taken = [b + i for b in blocks for i in range(5)] + singles
    assert all(p < floor for p in taken)
    assert len(taken) == len(set(taken))
