"""Polling a kernel's socket in one-second slices (jupyter/nbclient#312)."""

import asyncio
import queue

import pytest

from coursekit.tooling import polling


class _Socket:
    def __init__(self, ready_after: int):
        self.polls, self.ready_after = [], ready_after

    async def poll(self, ms):
        self.polls.append(ms)
        return len(self.polls) > self.ready_after


class _Channel:
    def __init__(self, ready_after: int):
        self.socket = _Socket(ready_after)

    async def _recv(self):
        return {"msg_type": "status"}


def test_a_message_is_returned_once_the_socket_has_one():
    channel = _Channel(ready_after=2)
    assert asyncio.run(polling._get_msg_in_slices(channel, timeout=None)) == {"msg_type": "status"}
    assert channel.socket.polls == [1000, 1000, 1000]  # waits at most a second at a time


def test_nothing_before_the_timeout_raises_empty():
    channel = _Channel(ready_after=10**9)
    with pytest.raises(queue.Empty):
        asyncio.run(polling._get_msg_in_slices(channel, timeout=0.05))
    assert all(ms <= 50 for ms in channel.socket.polls)


def test_patient_polling_replaces_the_channels_get_msg(monkeypatch):
    from jupyter_client.channels import AsyncZMQSocketChannel

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", AsyncZMQSocketChannel.get_msg)
    polling.patient_polling()
    assert AsyncZMQSocketChannel.get_msg is polling._get_msg_in_slices
