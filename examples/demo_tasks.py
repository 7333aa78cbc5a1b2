"""The work of the demo (examples/demo.py): parse a chunk of CSV-like text
records and aggregate it, in pure Python. Kept in a module so any executor
(threads, processes, multigil) can import it by name."""
import random


def make_lines(n, seed=0):
    """n synthetic sales records: date,store,product,qty,price."""
    rng = random.Random(seed)
    stores = [f"store{i:02d}" for i in range(40)]
    products = [f"sku{i:04d}" for i in range(500)]
    out = []
    for _ in range(n):
        out.append(f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                   f"{rng.choice(stores)},{rng.choice(products)},"
                   f"{rng.randint(1, 9)},{rng.uniform(0.5, 99.0):.2f}")
    return "\n".join(out)


def aggregate(text):
    """Revenue by (month, store), units by product, and a checksum."""
    by_month_store = {}
    units = {}
    n = 0
    for line in text.split("\n"):
        date, store, product, qty, price = line.split(",")
        q = int(qty)
        revenue = q * float(price)
        key = (date[:7], store)
        by_month_store[key] = by_month_store.get(key, 0.0) + revenue
        units[product] = units.get(product, 0) + q
        n += 1
    return n, by_month_store, units


def merge(parts):
    total_n = 0
    revenue = {}
    units = {}
    for n, r, u in parts:
        total_n += n
        for k, v in r.items():
            revenue[k] = revenue.get(k, 0.0) + v
        for k, v in u.items():
            units[k] = units.get(k, 0) + v
    return total_n, revenue, units
