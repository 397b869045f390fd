"""fapiao: scan-to-invoice (扫码开票) on Kafka."""

__version__ = "0.1.0"
