"""The HTTP gateway: the buyer's H5 pages behind QR links and the admin pages (aiohttp; it comes with faust)."""

from aiohttp import web

from fapiao.bootstrap import Bootstrap
from fapiao.config import Settings

SETTINGS = web.AppKey("settings", Settings)
PRODUCER = web.AppKey("producer", object)  # the AIOKafkaProducer
SETTINGS_CACHE = web.AppKey("settings_cache", object)  # the SettingsCache fed by the settings topic
ROOT = web.AppKey("root", Bootstrap)  # the process's composition root: sessions, link minter, order-query client
