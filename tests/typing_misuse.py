"""Wrong uses of multigil's API that the stubs must reject: tests/
test_typing.py runs mypy on this file and expects an error on exactly the
lines marked `# error`. Never imported by the test suite."""
import multigil as mg


def square(x: int) -> int:
    return x * x


def misuse() -> None:
    with mg.Pool(2) as pool:
        pool.submit(square, "three")  # error
        bad: str = pool.submit(square, 3).result()  # error
        pool.map(square, ["a"])  # error
        pool.broadcast(square, 1, 2)  # error
        pool.map(square, [1], progress="sometimes")  # error
        pool.amap(square, ["a"])  # error
        busy: str = pool.stats().workers[0].busy  # error
        print(busy)
        mg.Pool(workers="2")  # error
    a = mg.SharedArray(10)
    a[0] = "x"  # error
    s: str = a.dtype
    n: str = len(a.split(2))  # error
    mg.kernels.add(a, "1")  # error
    print(bad, s, n)
