#!/usr/bin/env python3
# Usage: scripts/admission-flood.py [A] [B] [C]   (STOMPBOX_BIN overrides target/debug/stompbox)
# Figures in docs/security/admission.md come from this script.
"""Hostile-input figures for admission (debug build): a connection flood from one address,
a slowloris from many addresses, password guessing. Each client binds its own 127.x source."""
import asyncio, re, subprocess, sys, time, os, statistics, tempfile

BIN = os.environ.get("STOMPBOX_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "debug", "stompbox")

def start(extra):
    d = tempfile.mkdtemp(prefix="adm-flood-")
    p = subprocess.Popen([BIN, "--stomp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                          "--data-dir", d, "--log", "warn", "--admission-exempt="] + extra,
                         stdout=subprocess.PIPE, stderr=open(d + "/log", "w"), text=True)
    line = p.stdout.readline()
    m = re.search(r"stomp=([\d.]+):(\d+)", line)
    return p, (m.group(1), int(m.group(2)))

def rss(p):
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"):
            return int(l.split()[1]) // 1024
    return -1

async def open_from(addr, src):
    return await asyncio.wait_for(asyncio.open_connection(addr[0], addr[1], local_addr=(src, 0)), 5)

async def frame(reader, t=5):
    data = await asyncio.wait_for(reader.readuntil(b"\0"), t)
    head = data.split(b"\n\n", 1)[0].decode(errors="replace")
    cmd = head.split("\n")[0]
    msg = re.search(r"message:([^\n]*)", head)
    return cmd, (msg.group(1) if msg else "")

async def attempt(addr, src, login="u", passcode=None, keep=None):
    try:
        r, w = await open_from(addr, src)
    except Exception as e:
        return "connect-failed"
    hdr = f"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{login}\nheart-beat:0,0\n"
    if passcode: hdr += f"passcode:{passcode}\n"
    try:
        w.write((hdr + "\n\0").encode()); await w.drain()
        cmd, msg = await frame(r)
    except Exception as e:
        w.close(); return "no-answer"
    if cmd == "CONNECTED" and keep is not None:
        keep.append(w)
    else:
        w.close()
    return cmd if cmd == "CONNECTED" else f"ERROR {msg}"

async def legit_probe(addr, stop, lat, src="127.0.0.3"):
    while not stop.is_set():
        t = time.perf_counter()
        res = await attempt(addr, src, "probe")
        lat.append((time.perf_counter() - t, res))
        await asyncio.sleep(0.1)

async def flood_one_address():
    p, addr = start([])
    base = rss(p)
    keep, outcomes, lat, stop = [], {}, [], asyncio.Event()
    probe = asyncio.create_task(legit_probe(addr, stop, lat))
    sem = asyncio.Semaphore(100)
    async def one(i):
        async with sem:
            res = await attempt(addr, "127.0.0.2", f"f{i}", keep=keep)
            outcomes[res] = outcomes.get(res, 0) + 1
    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(3000)))
    el = time.perf_counter() - t
    stop.set(); await probe
    ok = [l for l, r in lat if r == "CONNECTED"]
    print(f"A. flood from one address: 3000 CONNECT attempts (100 in flight) in {el:.1f}s ({3000/el:.0f}/s): {outcomes}")
    print(f"   meanwhile another address: {len(ok)}/{len(lat)} probes CONNECTED, median {statistics.median(ok)*1000:.1f} ms, max {max(ok)*1000:.1f} ms")
    print(f"   broker RSS {base} MiB before, {rss(p)} MiB after")
    for w in keep: w.close()
    p.kill()

async def slowloris_many_addresses():
    p, addr = start(["--connect-timeout", "20s"])
    # An established session before the attack.
    r0, w0 = await open_from(addr, "127.0.0.3")
    w0.write(b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:old\nheart-beat:0,0\n\n\0"); await w0.drain()
    assert (await frame(r0))[0] == "CONNECTED"
    w0.write(b"SUBSCRIBE\nid:1\ndestination:/topic/t\nreceipt:r\n\n\0"); await w0.drain(); await frame(r0)
    base = rss(p)
    socks, refused = [], {}
    t = time.perf_counter()
    sem = asyncio.Semaphore(200)
    async def one(src):
        async with sem:
            try:
                socks.append(await open_from(addr, src))
            except Exception:
                refused["connect-failed"] = refused.get("connect-failed", 0) + 1
    await asyncio.gather(*(one(f"127.0.{1 + a // 250}.{1 + a % 250}") for a in range(150) for _ in range(12)))
    await asyncio.sleep(0.5)
    silent = 0
    for r, w in socks:
        try:
            data = await asyncio.wait_for(r.read(200), 0.01)
            m = re.search(rb"message:([^\n]*)", data)
            k = m.group(1).decode() if m else "closed"
            refused[k] = refused.get(k, 0) + 1
        except asyncio.TimeoutError:
            silent += 1
    print(f"B. slowloris: 150 addresses x 12 silent sockets = {len(socks)} opened in {time.perf_counter()-t:.1f}s; "
          f"{silent} held silent, refused: {refused}")
    res = await attempt(addr, "127.0.0.4", "newcomer")
    # The established session still works.
    w0.write(b"SEND\ndestination:/topic/t\n\nhello\0"); await w0.drain()
    cmd, _ = await frame(r0)
    print(f"   new client during the attack: {res}; established session: got {cmd}; broker RSS {base} -> {rss(p)} MiB")
    t = time.perf_counter()
    while True:
        res = await attempt(addr, "127.0.0.4", "newcomer")
        if res == "CONNECTED": break
        await asyncio.sleep(0.25)
    print(f"   new clients admitted again {time.perf_counter()-t:.1f}s later (CONNECT deadline 20 s from each accept)")
    for r, w in socks: w.close()
    p.kill()

async def password_guessing():
    h = subprocess.run([BIN, "hash-password", "--password", "s3cret"], capture_output=True, text=True).stdout.strip()
    d = tempfile.mkdtemp(prefix="adm-users-")
    open(d + "/users.toml", "w").write(f'[users]\nalice = "{h}"\n')
    p, addr = start(["--users-file", d + "/users.toml", "--connect-rate-per-ip", "1000", "--connect-burst-per-ip", "1000"])
    out = {}; checks, throttled = [], []
    t0 = time.perf_counter()
    for i in range(200):
        t = time.perf_counter()
        res = await attempt(addr, "127.0.0.2", "alice", f"guess{i}")
        if "too many failed" in res: throttled.append(time.perf_counter() - t)
        if "authentication failed" in res: checks.append(time.perf_counter() - t)
        out[res] = out.get(res, 0) + 1
    el = time.perf_counter() - t0
    print(f"C. 200 wrong passwords for alice from one address (connect rate raised to 1000/s) in {el:.1f}s: {out}")
    print(f"   a password check answered in {statistics.median(checks)*1000:.0f} ms (median), a throttled attempt in {statistics.median(throttled)*1000:.1f} ms")
    res = await attempt(addr, "127.0.0.9", "alice", "s3cret")
    print(f"   alice from a clean address meanwhile: {res}")
    p.kill()

async def main():
    which = sys.argv[1:] or ["A", "B", "C"]
    if "A" in which: await flood_one_address()
    if "B" in which: await slowloris_many_addresses()
    if "C" in which: await password_guessing()

asyncio.run(main())
