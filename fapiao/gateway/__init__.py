"""The HTTP gateway: the buyer's H5 pages behind QR links (aiohttp; it comes with faust-streaming)."""
