"""The data data.md names: customers.parquet, a folder ``images/`` (with 0042.png) and ``df``, a
second customers table."""

from pathlib import Path

from common import customers

customers(1000).to_parquet("customers.parquet")
Path("images").mkdir()
for i in range(50):
    Path(f"images/{i:04d}.png").write_bytes(bytes([i]) * 200)
df = customers(300)
