"""The HTTP gateway: the buyer's H5 pages behind QR links and the admin pages (aiohttp; it comes with faust)."""

from aiohttp import web
from aiokafka import AIOKafkaProducer

from fapiao.bootstrap import Bootstrap
from fapiao.config import Settings
from fapiao.gateway.settings_cache import SettingsCache

SETTINGS = web.AppKey("settings", Settings)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
SETTINGS_CACHE = web.AppKey("settings_cache", SettingsCache)  # fed by the settings topic
ROOT = web.AppKey("root", Bootstrap)  # the process's composition root: sessions, link minter, order-query client
