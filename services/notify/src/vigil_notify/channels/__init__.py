"""Delivery channels, chosen by URL scheme (see :func:`default_registry`)."""

from vigil_notify.channels.base import Channel, DeliveryError, Message, PermanentFailure, TemporaryFailure
from vigil_notify.channels.registry import ChannelRegistry, default_registry

__all__ = [
    "Channel",
    "ChannelRegistry",
    "DeliveryError",
    "Message",
    "PermanentFailure",
    "TemporaryFailure",
    "default_registry",
]
