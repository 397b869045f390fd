"""The ceiling: an aiokafka consumer → json → producer pass-through, nothing else. Run by bench/run.py in its own
process so its memory is measured apart. Usage: passthrough.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP FETCH_MAX_WAIT_MS"""

import asyncio
import json
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def main(bootstrap: str, src: str, dst: str, group: str, fetch_max_wait_ms: str) -> None:
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        rebalance_timeout_ms=6000,
        fetch_max_wait_ms=int(fetch_max_wait_ms),
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(fetch_max_wait_ms))
            for records in batch.values():
                for r in records:
                    doc = json.loads(r.value)
                    await producer.send(dst, key=r.key, value=json.dumps(doc, ensure_ascii=False).encode())
            if batch:
                await producer.flush()
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:6]))
    except KeyboardInterrupt:
        pass
