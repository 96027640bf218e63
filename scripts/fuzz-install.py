#!/usr/bin/env python3
"""Random tester for `ggen marketplace install/update/remove`.

usage: scripts/fuzz-install.py SEED STEPS [COUNT]
  env BIN (default target/debug/ggen), FUZZ_OUT (default target/fuzz-install),
  FUZZ_TMP (default $FUZZ_OUT/tmp), FUZZ_KNOWN (violation kinds to count
  and go on past, comma-separated; default refused-cycle)

Runs seeds SEED .. SEED+COUNT-1 (COUNT defaults to 1).  Each seed builds a
small random registry in a fresh GGEN_HOME, runs STEPS random events
(publish of a new version, install/update/remove) against
$GGEN_HOME/packages and checks invariants after each one, against a
brute-force oracle of the documented rules (README, install and update).
A violation is minimised (delta debugging on the event list), written as a
shell script $FUZZ_OUT/repro-<kind>-<seed>.sh, and appended to
$FUZZ_OUT/results.jsonl.  Not part of the test suite (it is random and
slow); run it after changing install, update, remove or resolution.
"""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("BIN", os.path.join(REPO, "target/debug/ggen")))
OUT = os.path.abspath(os.environ.get("FUZZ_OUT", os.path.join(REPO, "target/fuzz-install")))
TMP = os.environ.get("FUZZ_TMP", os.path.join(OUT, "tmp"))
TIMEOUT = 60
# violation kinds already reported: counted, and the seed goes on
# (default: a cycle a no-dependencies install would record is refused
# without backing off to a version that closes none, a known limitation)
KNOWN = [k for k in os.environ.get("FUZZ_KNOWN", "refused-cycle").split(",") if k]
CACHE_TEMPLATE = os.path.join(OUT, "plugin-cache")  # warm compiled plugin

# ----------------------------------------------------------------- semver


def parse_ver(s):
    core, _, pre = s.partition("-")
    ma, mi, pa = (int(x) for x in core.split("."))
    return (ma, mi, pa, tuple(pre.split(".")) if pre else ())


def pre_key(pre):
    # empty pre-release sorts above any pre-release
    if not pre:
        return (1,)
    return (0, tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in pre))


def vkey(s):
    v = parse_ver(s)
    return (v[0], v[1], v[2], pre_key(v[3]))


def is_pre(s):
    return "-" in s


def parse_cmp(tok):
    tok = tok.strip()
    for op in (">=", "<=", "=", ">", "<", "~", "^"):
        if tok.startswith(op):
            rest = tok[len(op):].strip()
            break
    else:
        op, rest = "^", tok
    core, _, pre = rest.partition("-")
    parts = core.split(".")
    ma = int(parts[0])
    mi = int(parts[1]) if len(parts) > 1 else None
    pa = int(parts[2]) if len(parts) > 2 else None
    return (op, ma, mi, pa, tuple(pre.split(".")) if pre else ())


def parse_req(req):
    req = req.strip()
    if req == "*":
        return []
    return [parse_cmp(t) for t in req.split(",")]


def _pre_ge(a, b):
    return pre_key(a) >= pre_key(b)


def _same_major_minor(c, v):
    _, ma, mi, _, _ = c
    return v[0] == ma and (mi is None or v[1] == mi)


def _exact(c, v):
    op, ma, mi, pa, pre = c
    if not _same_major_minor(c, v):
        return False
    if pa is not None and v[2] != pa:
        return False
    return v[3] == pre


def _greater(c, v):
    op, ma, mi, pa, pre = c
    if v[0] != ma:
        return v[0] > ma
    if mi is None:
        return False
    if v[1] != mi:
        return v[1] > mi
    if pa is None:
        return False
    if v[2] != pa:
        return v[2] > pa
    return pre_key(v[3]) > pre_key(pre)


def _less(c, v):
    op, ma, mi, pa, pre = c
    if v[0] != ma:
        return v[0] < ma
    if mi is None:
        return False
    if v[1] != mi:
        return v[1] < mi
    if pa is None:
        return False
    if v[2] != pa:
        return v[2] < pa
    return pre_key(v[3]) < pre_key(pre)


def _tilde(c, v):
    op, ma, mi, pa, pre = c
    if not _same_major_minor(c, v):
        return False
    if pa is not None and v[2] != pa:
        return v[2] > pa
    return _pre_ge(v[3], pre)


def _caret(c, v):
    op, ma, mi, pa, pre = c
    if v[0] != ma:
        return False
    if mi is None:
        return True
    if pa is None:
        return v[1] >= mi if ma > 0 else v[1] == mi
    if ma > 0:
        if v[1] != mi:
            return v[1] > mi
        if v[2] != pa:
            return v[2] > pa
    elif mi > 0:
        if v[1] != mi:
            return False
        if v[2] != pa:
            return v[2] > pa
    elif v[1] != mi or v[2] != pa:
        return False
    return _pre_ge(v[3], pre)


def cmp_matches(c, v):
    op = c[0]
    if op == "=":
        return _exact(c, v)
    if op == ">":
        return _greater(c, v)
    if op == ">=":
        return _exact(c, v) or _greater(c, v)
    if op == "<":
        return _less(c, v)
    if op == "<=":
        return _exact(c, v) or _less(c, v)
    if op == "~":
        return _tilde(c, v)
    return _caret(c, v)


_MATCH_CACHE = {}


def matches(req, ver):
    key = (req, ver)
    r = _MATCH_CACHE.get(key)
    if r is None:
        cmps = parse_req(req)
        v = parse_ver(ver)
        r = all(cmp_matches(c, v) for c in cmps)
        if r and v[3]:
            r = any(c[1] == v[0] and c[2] == v[1] and c[3] == v[2] and c[4] for c in cmps)
        _MATCH_CACHE[key] = r
    return r


def install_req_versions(spec, versions, lenient=False):
    """Versions an install request `spec` (None = a bare name) may pick;
    `versions` are all the package's versions."""
    if spec == "latest":  # exactly the newest: stable, else pre-release
        stable = [v for v in versions if not is_pre(v)]
        return [max(stable or versions, key=vkey)] if versions else []
    if spec is None:
        stable = [v for v in versions if not is_pre(v)]
        if lenient:  # a pre-release another package's requirement names
            return stable + [v for v in versions if is_pre(v)]
        return stable if stable else list(versions)
    s = spec.strip()
    if s[0].isdigit() and s.split("-")[0].count(".") == 2 and "," not in s:
        return [v for v in versions if v == s]  # a full bare version is exact
    return [v for v in versions if matches(s, v)]


def up_versions(vs, cur, named_lines=frozenset()):
    """Versions an installed package may move to without being asked for a
    pre-release: itself, stable ones above it, pre-releases of its own
    version line when it is a pre-release, and pre-releases above it of a
    version line some dependency requirement names (`named_lines`, as
    (major, minor, patch))."""
    c = parse_ver(cur)
    out = []
    for v in vs:
        if vkey(v) < vkey(cur):
            continue
        p = parse_ver(v)
        if v == cur or not p[3] or (c[3] and p[:3] == c[:3]) or p[:3] in named_lines:
            out.append(v)
    if cur not in out:
        out.append(cur)
    return sorted(out, key=vkey, reverse=True)


# ------------------------------------------------------------ registry gen

NAME_POOL = ["app", "base", "core", "kit", "lib", "tool", "util", "zed"]
VERSION_POOL = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "3.0.0"]
PRE_POOL = ["2.0.0-rc.1", "3.0.0-beta.1", "1.3.0-alpha.1"]
DEP_REQS = ["^1", "^1", "^2", ">=1.1", "=1.0.0", "*", "*", "~1.1", ">=1, <2", "^1.2",
            "^2", ">=2", "=2.0.0", "^3", "1"]
DEP_REQS_RARE = ["^2.0.0-rc", "^3.0.0-beta", "~1.3.0-alpha"]
INSTALL_REQS = ["latest", "1.0.0", "1.1.0", "=1.1.0", "^1", "^2", ">=1.1", "~1.1", "2.0.0",
                "1", ">=1, <2", "^1.2", "3"]
INSTALL_REQS_RARE = ["^2.0.0-rc", "2.0.0-rc.1", "^3.0.0-beta"]


def gen_registry(rng):
    k = rng.randint(5, 7)
    names = sorted(rng.sample(NAME_POOL, k))
    rng.shuffle(names)  # topological order: deps point to later names
    ghost = "ghost" if rng.random() < 0.25 else None
    allv = []  # (name, version, deps)
    for i, n in enumerate(names):
        nv = rng.randint(1, 4)
        vs = rng.sample(VERSION_POOL, nv)
        if rng.random() < 0.2:
            vs.append(rng.choice(PRE_POOL))
        later = names[i + 1:]
        for v in vs:
            deps = {}
            nd = rng.choice([0, 0, 1, 1, 1, 2, 2, 3])
            cands = list(later)
            if rng.random() < 0.04 and i > 0:
                cands.append(rng.choice(names[:i]))  # a back edge: maybe a cycle
            if ghost and rng.random() < 0.15:
                cands.append(ghost)
            for d in rng.sample(cands, min(nd, len(cands))):
                if rng.random() < 0.06:
                    deps[d] = rng.choice(DEP_REQS_RARE)
                else:
                    deps[d] = rng.choice(DEP_REQS)
            allv.append((n, v, deps))
    if ghost and rng.random() < 0.5:
        allv.append((ghost, "1.0.0", {}))
    rng.shuffle(allv)
    cut = max(3, len(allv) // 2 + rng.randint(-2, 2))
    return names + ([ghost] if ghost else []), allv[:cut], allv[cut:]


# --------------------------------------------------------------- runner


def snapshot(root):
    if not os.path.lexists(root):
        return None
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        out[rel + "/"] = "dir"
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            r = os.path.relpath(p, root)
            if os.path.islink(p):
                out[r] = "link:" + os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[r] = hashlib.sha256(f.read()).hexdigest()
            elif not os.path.isdir(p):
                out[r] = "special"
    return out


def snap_diff(a, b):
    if a is None or b is None:
        return f"root existed before={a is not None} after={b is not None}"
    d = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            d.append(f"{k}: {'absent' if k not in a else 'present'} -> {'absent' if k not in b else 'changed' if k in a else 'present'}")
    return "; ".join(d[:10])


class Violation(Exception):
    def __init__(self, kind, detail, step=None):
        super().__init__(kind)
        self.kind = kind
        self.detail = detail
        self.step = step


class Runner:
    def __init__(self, names):
        self.home = tempfile.mkdtemp(prefix="gh-", dir=TMP)
        if os.path.isdir(CACHE_TEMPLATE):
            shutil.copytree(CACHE_TEMPLATE, os.path.join(self.home, "cache", "plugins"))
        self.root = os.path.join(self.home, "packages")
        self.pkgdir = os.path.join(self.home, "src")
        os.makedirs(self.pkgdir)
        self.names = list(names)
        self.reg = {}  # name -> {version: deps}
        self.mode = {}  # installed name -> 'full' | 'partial'
        self.named_ever = set()
        self.log = []  # transcript of the last command
        self.stats = {"cmds": 0, "fail": 0}

    def cleanup(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def env(self):
        e = dict(os.environ)
        e["GGEN_HOME"] = self.home
        e["NO_COLOR"] = "1"
        e.pop("RUST_LOG", None)
        e.pop("GGEN_FAULT", None)
        e.pop("GGEN_CRASH", None)
        return e

    def run(self, args):
        try:
            p = subprocess.run([BIN] + args, env=self.env(), capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Violation("hang", f"ggen {' '.join(args)} ran over {TIMEOUT}s")
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def lock(self):
        p = os.path.join(self.root, "ggen.lock")
        if not os.path.exists(p):
            return {}
        with open(p) as f:
            data = json.load(f)
        return {x["name"]: (x["version"], dict(x.get("dependencies", {}))) for x in data["packages"]}

    def requested(self):
        """Names ggen.lock marks as installed only as dependencies."""
        p = os.path.join(self.root, "ggen.lock")
        if not os.path.exists(p):
            return set()
        with open(p) as f:
            return {x["name"] for x in json.load(f)["packages"] if x.get("requested") is False}

    # ---------------------------------------------------------- publish
    def publish(self, name, version, deps):
        d = os.path.join(self.pkgdir, f"{name}-{version}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "package.json"), "w") as f:
            json.dump({"name": name, "version": version, "description": f"{name} {version}",
                       "dependencies": deps}, f)
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write(f"# {name}-{version}\n")
        rc, out, err = self.run(["marketplace", "publish", d])
        if rc != 0:
            raise Violation("publish-failed", f"publish {name}@{version}: rc={rc} {err.strip()}")
        self.reg.setdefault(name, {})[version] = dict(deps)
        if name not in self.names:
            self.names.append(name)

    # ---------------------------------------------------------- model helpers
    def deps_of(self, name, ver):
        return self.reg.get(name, {}).get(ver, {})

    def universe(self):
        u = set(self.names) | set(self.reg) | set(self.mode)
        for n, vs in self.reg.items():
            for deps in vs.values():
                u |= set(deps)
        return u

    def closure(self, lock, names, up):
        """What depends on `names` (up) or what they depend on, directly or
        not, by ggen.lock; `names` themselves left out."""
        found, stack = set(), list(names)
        while stack:
            x = stack.pop()
            nxt = [p for p, (_, d) in lock.items() if x in d] if up else list(lock.get(x, (None, {}))[1])
            for p in nxt:
                if p not in found and p not in names:
                    found.add(p)
                    stack.append(p)
        return found

    def existing_mode(self, n, inst, lock, strict):
        """'partial' for a package that lacks some dependency: by ggen.lock
        (a dependency not recorded, or recorded but not installed); unless
        strict, also one our model says went in with --no-dependencies."""
        if n in lock:
            v, rec = lock[n]
            for d in self.deps_of(n, v):
                if d not in rec or d not in inst:
                    return "partial"
        if not strict and self.mode.get(n) == "partial":
            return "partial"
        return "full"

    def named_prerelease_lines(self, name):
        """Version lines of `name` that a dependency requirement names with a
        pre-release (`^3.0.0-beta` names 3.0.0)."""
        lines = set()
        for versions in self.reg.values():
            for deps in versions.values():
                req = deps.get(name)
                if req:
                    for ma, mi, pa in re.findall(r"(\d+)\.(\d+)\.(\d+)-", req):
                        lines.add((int(ma), int(mi), int(pa)))
        return frozenset(lines)

    def problem(self, ev, inst, strict=False):
        """Domains and post-modes for the states the command may reach."""
        kind = ev["cmd"]
        lock0 = self.lock()
        dom, mode_after = {}, {}
        reach_from = None
        for n in sorted(self.universe()):
            vs = sorted(self.reg.get(n, {}), key=vkey, reverse=True)
            cur = inst.get(n)
            if kind == "install":
                specs = dict(ev["specs"])
                if n in specs:
                    dom[n] = install_req_versions(specs[n], vs, lenient=not strict)
                    # ggen: a request the installed version fits does not lower it
                    if cur is not None and (specs[n] in (None, "*") or cur in dom[n]):
                        dom[n] = [v for v in dom[n] if vkey(v) >= vkey(cur)] or [cur]
                    mode_after[n] = "partial" if ev["nodeps"] else "full"
                elif ev["nodeps"]:
                    dom[n] = [cur]
                    mode_after[n] = self.existing_mode(n, inst, lock0, strict)
                elif cur is not None:
                    dom[n] = up_versions(vs, cur, self.named_prerelease_lines(n))
                    mode_after[n] = self.existing_mode(n, inst, lock0, strict)
                else:
                    dom[n] = vs + [None]
                    mode_after[n] = "full"
            elif kind == "update":
                targets = set(inst) if ev["all"] else set(ev["names"])
                if cur is not None:
                    dom[n] = up_versions(vs, cur, self.named_prerelease_lines(n))
                    if n in targets and not ev["all"]:
                        mode_after[n] = "full"
                    else:
                        mode_after[n] = self.existing_mode(n, inst, lock0, strict)
                else:
                    dom[n] = vs + [None]
                    mode_after[n] = "full"
                if not ev["all"]:
                    reach_from = set(ev["names"])
                    # ggen: the named packages' dependents (by ggen.lock)
                    # that they do not need stay where they are
                    if cur is not None and n in self.closure(lock0, targets, up=True) \
                            and n not in self.closure(lock0, targets, up=False):
                        dom[n] = [cur]
        # A package that goes in or stays without its dependencies tolerates
        # an installed dependency that does not fit it, as long as that one was
        # there before and is not recorded as its dependency (README: "keeps
        # needing only the dependencies that are installed (and fit)").
        lock = self.lock()
        loose = set()
        named = {n for n, _ in ev["specs"]} if kind == "install" else set()
        for p, m in mode_after.items():
            if m != "partial":
                continue
            # named with --no-dependencies: as a fresh install beside them
            rec = lock.get(p, (None, {}))[1] if p in inst and p not in named else {}
            for d in inst:
                if d not in rec:
                    loose.add((p, d))
        self.cur_named, self.cur_inst = named, dict(inst)
        return dom, mode_after, reach_from, loose

    def check_state(self, assign, mode_after, inst_before=None, reach_from=None, loose=()):
        """None if assign (name -> version|None) is a valid end state, else why."""
        for p, v in assign.items():
            if v is None:
                continue
            for d, req in self.deps_of(p, v).items():
                dv = assign.get(d)
                if dv is None:
                    if mode_after.get(p, "full") == "full":
                        return f"{p}@{v} needs {d} {req}, not installed"
                elif not matches(req, dv) and not self.loose_ok(p, d, dv, loose, v):
                    return f"{p}@{v} needs {d} {req}, installed {dv}"
        cyc = self.cycle(assign)
        if cyc:
            return "cycle " + " -> ".join(cyc)
        if inst_before is not None:
            # an installed package moves up to a pre-release of another
            # version line only when a package of this state names that line:
            # one installed before, or one the command brings in (what it
            # names and their dependencies), not one added to justify it
            wanted, todo = set(inst_before), list(getattr(self, "roots_now", ()))
            while todo:
                x = todo.pop()
                if x in wanted and x not in getattr(self, "roots_now", ()) or assign.get(x) is None:
                    continue
                wanted.add(x)
                todo.extend(d for d in self.deps_of(x, assign[x]) if d not in wanted)
            for p, v in assign.items():
                was = inst_before.get(p)
                if v is None or was is None or v == was or not parse_ver(v)[3] \
                        or parse_ver(v)[:3] == parse_ver(was)[:3] or p in getattr(self, "named_now", ()):
                    continue
                named = any(
                    parse_ver(v)[:3] == (int(ma), int(mi), int(pa))
                    for q, qv in assign.items() if qv is not None and q in wanted
                    for ma, mi, pa in re.findall(r"(\d+)\.(\d+)\.(\d+)-", self.deps_of(q, qv).get(p, "")))
                if not named:
                    return f"{p} moved {was} -> {v}, a pre-release nothing here names"
        if reach_from is not None and inst_before is not None:
            # only what the named packages' new versions need may move
            seen, todo = set(), [x for x in reach_from if assign.get(x)]
            while todo:
                x = todo.pop()
                if x in seen:
                    continue
                seen.add(x)
                for d in self.deps_of(x, assign[x]):
                    if assign.get(d) is not None:
                        todo.append(d)
                # a package installed without x binds it (README: it may move
                # up to a version that accepts x)
                for p, pv in assign.items():
                    was = inst_before.get(p)
                    if pv is not None and was is not None and mode_after.get(p) == "partial" \
                            and x in self.deps_of(p, was):
                        todo.append(p)
            for p, v in assign.items():
                if p in inst_before and v != inst_before[p] and p not in seen:
                    return f"{p} moved {inst_before[p]} -> {v} though not a dependency of {sorted(reach_from)}"
        return None

    def loose_ok(self, p, d, dv, loose, pv=None):
        """May p stay beside an installed d that does not fit it?  Only if d
        was there, unrecorded, before; and not when both are named, or d is
        named and moves ("One that goes in later (asked for ...) must fit")."""
        if (p, d) not in loose:
            return False
        inst = getattr(self, "cur_inst", {})
        # ggen: moving, p must fit what is installed, except what did not fit
        # it at its installed version already
        if pv is not None and p in inst and pv != inst[p] and p not in getattr(self, "cur_named", set()):
            req0 = self.deps_of(p, inst[p]).get(d)
            if req0 is None or d not in inst or matches(req0, inst[d]):
                return False
        named = getattr(self, "cur_named", set())
        if d in named and p in named:
            return False
        return True

    def cycle(self, assign):
        color = {}

        def dfs(x, path):
            color[x] = 1
            for d, req in self.deps_of(x, assign[x]).items():
                if assign.get(d) is None or not matches(req, assign[d]):
                    continue
                if color.get(d) == 1:
                    return path[path.index(d):] + [d] if d in path else [x, d]
                if d not in color:
                    r = dfs(d, path + [d])
                    if r:
                        return r
            color[x] = 2
            return None

        for x, v in assign.items():
            if v is not None and x not in color:
                r = dfs(x, [x])
                if r:
                    return r
        return None

    def solve(self, dom, mode_after, inst_before, reach_from, loose, fixed=None):
        """First valid assignment (backtracking), or None."""
        dom = dict(dom)
        if fixed:
            for k, v in fixed.items():
                dom[k] = [v]
        order = sorted(dom, key=lambda n: (len(dom[n]), n))
        # names that constrain each other: check incrementally
        assign = {}

        def ok_incremental(x, v):
            if v is not None:
                for d, req in self.deps_of(x, v).items():
                    if d in assign:
                        dv = assign[d]
                        if dv is None:
                            if mode_after.get(x, "full") == "full":
                                return False
                        elif not matches(req, dv) and not self.loose_ok(x, d, dv, loose, v):
                            return False
                    elif d not in dom:
                        if mode_after.get(x, "full") == "full":
                            return False
            for p, pv in assign.items():
                if pv is None:
                    continue
                req = self.deps_of(p, pv).get(x)
                if req is None:
                    continue
                if v is None:
                    if mode_after.get(p, "full") == "full":
                        return False
                elif not matches(req, v) and not self.loose_ok(p, x, v, loose, pv):
                    return False
            return True

        budget = [200000]

        def bt(i):
            budget[0] -= 1
            if budget[0] < 0:
                raise TimeoutError
            if i == len(order):
                full = dict(assign)
                return full if self.check_state(full, mode_after, inst_before, reach_from, loose) is None else None
            x = order[i]
            for v in dom[x]:
                if ok_incremental(x, v):
                    assign[x] = v
                    r = bt(i + 1)
                    if r is not None:
                        return r
                    del assign[x]
            return None

        try:
            return bt(0)
        except TimeoutError:
            return "unknown"

    # ---------------------------------------------------------- commands
    def argv(self, ev):
        if ev["cmd"] == "install":
            a = ["marketplace", "install"] + [n if s is None else f"{n}@{s}" for n, s in ev["specs"]]
            if ev["nodeps"]:
                a.append("--no-dependencies")
        elif ev["cmd"] == "update":
            a = ["marketplace", "update"] + (["--all"] if ev["all"] else list(ev["names"]))
        else:
            a = ["marketplace", "remove", ev["name"]] + (["--force"] if ev["force"] else [])
        return a + ["--json"]

    def step(self, ev):
        if ev["cmd"] == "publish":
            self.publish(ev["name"], ev["version"], ev["deps"])
            return
        self.stats["cmds"] += 1
        argv = self.argv(ev)
        before = snapshot(self.root)
        lock_before = self.lock()
        self.deps_only_before = self.requested()
        inst_before = {n: v for n, (v, _) in lock_before.items()}
        self.loose = set()
        self.problem_before = self.problem(ev, inst_before) if ev["cmd"] != "remove" else None
        # what the command names itself may go to a pre-release it asks for;
        # what it names, or what was installed, may name one for another
        self.named_now = {n for n, _ in ev.get("specs", [])}
        self.roots_now = self.named_now | set(ev.get("names", []) or (inst_before if ev.get("all") else ()))
        self.problem_strict = self.problem(ev, inst_before, strict=True) if ev["cmd"] != "remove" else None
        plan = None
        if ev.get("dry") and ev["cmd"] != "remove":
            rc, out, err = self.run(argv + ["--dry-run"])
            self.check_process(argv + ["--dry-run"], rc, out, err)
            if snapshot(self.root) != before:
                raise Violation("dry-run-changed-root", f"{' '.join(argv)} --dry-run: {snap_diff(before, snapshot(self.root))}")
            plan = (rc, out, err)
        rc, out, err = self.run(argv)
        ev["_rc"] = rc
        self.log = [(argv, rc, out, err)]
        self.check_process(argv, rc, out, err)
        after = snapshot(self.root)
        cmdline = "ggen " + " ".join(argv)
        if plan is not None:
            if (plan[0] == 0) != (rc == 0):
                raise Violation("dry-run-disagrees", f"{cmdline}: dry-run rc={plan[0]} ({plan[2].strip()[-300:]}) real rc={rc} ({err.strip()[-300:]})")
            if rc == 0:
                pp = [(p["name"], p["version"], p["action"]) for p in json.loads(plan[1])["packages"]]
                rp = [(p["name"], p["version"], p["action"]) for p in json.loads(out)["packages"]]
                if pp != rp:
                    raise Violation("dry-run-disagrees", f"{cmdline}: plan {pp} but did {rp}")
        if rc != 0:
            self.stats["fail"] += 1
            if after != before:
                raise Violation("failure-changed-root", f"{cmdline} failed ({err.strip()}) yet changed the root: {snap_diff(before, after)}")
            self.soft(self.judge_failure, ev, inst_before, lock_before, err.strip())
            return
        lock_after = self.lock()
        inst_after = {n: v for n, (v, _) in lock_after.items()}
        self.soft(self.check_success, ev, inst_before, lock_before, inst_after, lock_after, out)
        self.update_model(ev, inst_before, lock_before, inst_after, out)
        self.check_root_files(inst_after, cmdline)
        self.check_lock(inst_after, lock_after, cmdline)
        self.check_verify(inst_after, cmdline)

    def soft(self, fn, *args):
        try:
            fn(*args)
        except Violation as v:
            if any(v.kind.startswith(k) for k in KNOWN):
                self.stats.setdefault("known", {})
                self.stats["known"][v.kind] = self.stats["known"].get(v.kind, 0) + 1
                return
            raise

    def check_process(self, argv, rc, out, err):
        cmdline = "ggen " + " ".join(argv)
        if "panicked" in err or "RUST_BACKTRACE" in err or "stack backtrace" in err:
            raise Violation("panic", f"{cmdline}: {err.strip()[-1500:]}")
        if rc not in (0, 1):
            raise Violation("bad-exit", f"{cmdline}: exit {rc}: {err.strip()[-500:]}")
        if rc == 1:
            errs = [l for l in err.splitlines() if l.startswith("error: ")]
            if len(errs) != 1:
                raise Violation("error-not-one-line", f"{cmdline}: stderr {err!r}")
        if rc == 0 and "--json" in argv:
            try:
                json.loads(out)
            except ValueError:
                raise Violation("bad-json", f"{cmdline}: {out[:500]!r}")

    def judge_failure(self, ev, inst, lock_before, err):
        cmdline = "ggen " + " ".join(self.argv(ev))
        if ev["cmd"] == "remove":
            x = ev["name"]
            if x not in inst:
                return
            if ev["force"]:
                raise Violation("remove-force-refused", f"{cmdline}: {err}")
            dependents = [p for p, (_, d) in lock_before.items() if x in d]
            if not dependents:
                raise Violation("remove-refused-without-dependents", f"{cmdline}: {err}")
            return
        if ev["cmd"] == "update" and not ev["all"]:
            if any(n not in inst for n in ev["names"]):
                return
        if ev["cmd"] == "install" and any(not self.reg.get(n) for n, _ in ev["specs"]):
            return
        if not inst and ev["cmd"] == "update":
            return
        dom, mode_after, reach, loose = self.problem(ev, inst, strict=True)
        sol = self.solve(dom, mode_after, inst, reach, loose)
        if sol == "unknown" or sol is None:
            return
        changed = {n: v for n, v in sol.items() if v != inst.get(n)}
        cat = err[len("error: "):].split(":")[0].strip().replace(" ", "_")[:30]
        kind = "refused-cycle" if "cycle" in err else f"refused-though-solvable-{ev['cmd']}-{cat}"
        # A cycle is refused whoever holds the installed versions in it.
        if kind != "refused-cycle" and any(mode_after.get(n) == "partial" for n in changed if n in inst):
            kind = f"refused-nodeps-holder-cannot-move-{ev['cmd']}"
        raise Violation(kind, f"{cmdline} failed: {err}\n  installed before: {inst}\n  a valid end state exists, changing {changed}")

    def check_success(self, ev, inst, lock_before, inst_after, lock_after, out):
        cmdline = "ggen " + " ".join(self.argv(ev))
        # invariant 5: update never downgrades; install only a named package whose request excludes it
        for n, v in inst.items():
            nv = inst_after.get(n)
            if nv is None:
                if not (ev["cmd"] == "remove" and n in self.pruned(ev["name"], lock_before)):
                    raise Violation("package-disappeared", f"{cmdline}: {n}@{v} is gone")
                continue
            if vkey(nv) < vkey(v):
                if ev["cmd"] == "install":
                    specs = dict(ev["specs"])
                    if n in specs and v not in install_req_versions(specs[n], list(self.reg.get(n, {}))):
                        continue
                    if n in specs and specs[n] in (None, "latest") and is_pre(v) and not is_pre(nv):
                        continue  # latest is the newest stable version
                    raise Violation("install-downgraded", f"{cmdline}: {n} {v} -> {nv}")
                raise Violation(f"{ev['cmd']}-downgraded", f"{cmdline}: {n} {v} -> {nv}")
        if ev["cmd"] == "remove":
            x = ev["name"]
            if x not in inst or x in inst_after:
                raise Violation("remove-wrong", f"{cmdline}: before {inst.get(x)} after {inst_after.get(x)}")
            dependents = sorted(p for p, (_, d) in lock_before.items() if x in d)
            if dependents and not ev["force"]:
                raise Violation("remove-ignored-dependents", f"{cmdline}: removed though {dependents} depend on it")
            for n in inst_after:
                if inst_after[n] != inst[n] or lock_after[n][1] != lock_before[n][1]:
                    raise Violation("remove-touched-others", f"{cmdline}: {n} {lock_before[n]} -> {lock_after[n]}")
            gone = self.pruned(x, lock_before)
            if set(inst) - set(inst_after) != gone:
                raise Violation("remove-pruned-wrong", f"{cmdline}: removed {sorted(set(inst) - set(inst_after))}, expected {sorted(gone)}")
            rep = json.loads(out)
            want = sorted(f"{p}@{inst[p]}" for p in gone - {x})
            if sorted(rep.get("also_removed", [])) != want:
                raise Violation("remove-report", f"{cmdline}: also_removed {rep.get('also_removed')} expected {want}")
            if ev["force"]:
                rep = json.loads(out)
                want = sorted(f"{p}@{inst[p]}" for p in dependents)
                if sorted(rep.get("broken_dependents", [])) != want:
                    raise Violation("remove-report", f"{cmdline}: broken_dependents {rep.get('broken_dependents')} expected {want}")
            return
        # ggen.lock marks what went in only as a dependency: a named package
        # never, a newcomer nobody named always, the rest as before
        deps_only = self.requested()
        named = {n for n, _ in ev["specs"]} if ev["cmd"] == "install" else set()
        for n in inst_after:
            want = (n in self.deps_only_before and n not in named) if n in inst else n not in named
            if (n in deps_only) != want:
                raise Violation("requested-mark-wrong", f"{cmdline}: {n} marked {'dependency' if n in deps_only else 'requested'}")
        # the end state is one the command may reach
        dom, mode_after, reach, loose = self.problem_before
        self.loose = loose
        assign = {n: inst_after.get(n) for n in dom}
        for n in inst_after:
            if n not in dom:
                raise Violation("unknown-package", f"{cmdline}: {n} installed but not in the registry")
        for n, v in assign.items():
            if v not in dom[n]:
                raise Violation("outside-command-meaning", f"{cmdline}: {n} {inst.get(n)} -> {v}, allowed {dom[n]}\n  before {inst}\n  after {inst_after}")
        why = self.check_state(assign, mode_after, inst, reach, loose)
        if why:
            sub = ("missing-dep" if why.endswith("not installed") else "cycle" if why.startswith("cycle")
                   else "moved-unrelated" if " moved " in why else "unfit-dep")
            raise Violation(f"invalid-end-state-{ev['cmd']}-{sub}", f"{cmdline}: {why}\n  before {inst}\n  after {inst_after}")
        # invariant 4: nothing comes in that nobody asked for
        named = {n for n, _ in ev["specs"]} if ev["cmd"] == "install" else set()
        justified = set(inst) | named
        complete_before = {p for p, (v, d) in lock_before.items()
                           if set(self.deps_of(p, v)) <= set(d)}
        new = set(inst_after) - set(inst)
        changed = True
        while changed:
            changed = False
            for x in new - justified:
                for p in justified:
                    if p in inst_after and x in self.deps_of(p, inst_after[p]) and \
                            (mode_after.get(p) == "full" or p in complete_before or p in new):
                        justified.add(x)
                        changed = True
                        break
        if new - justified:
            raise Violation("unrequested-install", f"{cmdline}: {sorted(new - justified)} installed, needed by nobody with dependencies\n  before {inst}\n  after {inst_after}")
        # the report matches what happened
        rep = json.loads(out)
        for p in rep["packages"]:
            if inst_after.get(p["name"]) != p["version"]:
                raise Violation("report-mismatch", f"{cmdline}: report says {p['name']}@{p['version']} ({p['action']}), lock has {inst_after.get(p['name'])}")
        reported = {p["name"] for p in rep["packages"]}
        for n, v in inst_after.items():
            if inst.get(n) != v and n not in reported:
                raise Violation("report-mismatch", f"{cmdline}: {n} moved {inst.get(n)} -> {v} but is not in the report")
        # highest fitting version for a single named package
        targets = []
        if ev["cmd"] == "install" and len(ev["specs"]) == 1:
            targets = [ev["specs"][0][0]]
        elif ev["cmd"] == "update" and not ev["all"] and len(ev["names"]) == 1:
            targets = list(ev["names"])
        if targets:
            sdom, smode, sreach, sloose = self.problem_strict
        for t in targets:
            got = inst_after[t]
            for v in sdom[t]:
                if vkey(v) <= vkey(got):
                    break
                sol = self.solve(sdom, smode, inst, set(targets), sloose, fixed={t: v})
                if sol and sol != "unknown":
                    changed = {n: x for n, x in sol.items() if x != inst.get(n)}
                    sub = "moves-installed" if any(n in inst and n != t for n in changed) else "plain"
                    raise Violation(f"not-highest-{ev['cmd']}-{sub}", f"{cmdline}: picked {t}@{got}, but {t}@{v} fits: {changed}\n  before {inst}")

    def pruned(self, x, lock_before):
        """What `remove x` takes out: x, and the packages installed only as
        dependencies that nothing left depends on (the tester edits no files)."""
        gone = {x}
        while True:
            left = {n: d for n, (_, d) in lock_before.items() if n not in gone}
            orphans = {n for n in left if n in self.deps_only_before
                       and not any(n in d for d in left.values())}
            if not orphans:
                return gone
            gone |= orphans

    def update_model(self, ev, inst, lock_before, inst_after, out):
        if ev["cmd"] == "remove":
            for gone in self.pruned(ev["name"], lock_before):
                self.mode.pop(gone, None)
            x = ev["name"]
            for p, (_, d) in lock_before.items():
                if x in d and p in inst_after:
                    self.mode[p] = "partial"  # broken: like one installed without it
            return
        for n in list(self.mode):
            if n not in inst_after:
                self.mode.pop(n)
        for n in inst_after:
            if n not in inst:
                self.mode[n] = "full"
        if ev["cmd"] == "install":
            for n, _ in ev["specs"]:
                self.mode[n] = "partial" if ev["nodeps"] else "full"
                self.named_ever.add(n)
        elif ev["cmd"] == "update" and not ev["all"]:
            for n in ev["names"]:
                self.mode[n] = "full"

    def check_root_files(self, inst_after, cmdline):
        if not os.path.isdir(self.root):
            return
        extra = [e for e in os.listdir(self.root)
                 if e not in ("ggen.lock", ".ggen-install.lock") and e not in inst_after]
        if extra:
            raise Violation("leftover-in-root", f"{cmdline}: {extra}")
        for n in inst_after:
            if not os.path.isfile(os.path.join(self.root, n, "package.json")):
                raise Violation("package-dir-missing", f"{cmdline}: {n}")
            with open(os.path.join(self.root, n, "package.json")) as f:
                pj = json.load(f)
            if pj["version"] != inst_after[n]:
                raise Violation("wrong-files", f"{cmdline}: {n} dir holds {pj['version']}, lock {inst_after[n]}")

    def check_lock(self, inst, lock, cmdline):
        for p, (v, rec) in lock.items():
            deps = self.deps_of(p, v)
            for d, req in deps.items():
                if d in inst:
                    if not matches(req, inst[d]) and self.mode.get(p) == "partial":
                        if d in rec:
                            raise Violation("lock-records-unfit-dep", f"{cmdline}: {p}@{v} records {d}={rec[d]} which does not fit {req}\n  lock {lock}")
                        continue
                    if not matches(req, inst[d]):
                        raise Violation("dependency-does-not-fit", f"{cmdline}: {p}@{v} needs {d} {req}, installed {inst[d]}\n  lock {lock}")
                    if rec.get(d) != inst[d]:
                        raise Violation("lock-record-wrong", f"{cmdline}: {p}@{v} records {d}={rec.get(d)}, installed {inst[d]}\n  lock {lock}")
                elif d in rec and self.mode.get(p) != "partial":
                    raise Violation("lock-records-missing-dep", f"{cmdline}: {p}@{v} records {d}={rec[d]} which is not installed\n  lock {lock}")
            for d in rec:
                if d not in deps:
                    raise Violation("lock-records-non-dep", f"{cmdline}: {p}@{v} records {d}, not a dependency\n  lock {lock}")

    def check_verify(self, inst, cmdline):
        rc, out, err = self.run(["marketplace", "verify", "--json"])
        if "panicked" in err:
            raise Violation("panic", f"verify after {cmdline}: {err[-1500:]}")
        try:
            rep = json.loads(out)
        except ValueError:
            raise Violation("verify-bad-json", f"after {cmdline}: rc={rc} {out[:300]!r} {err[:300]!r}")
        problems = []
        if rep.get("interrupted"):
            problems.append(f"interrupted={rep['interrupted']}")
        for p in rep["packages"]:
            for k in ("modified", "missing", "extra", "changed_by_hooks"):
                if p.get(k):
                    problems.append(f"{p['name']} {k} {p[k]}")
            for md in p.get("missing_dependencies", []):
                d = md.split("@")[0]
                if d in inst or self.mode.get(p["name"]) != "partial":
                    problems.append(f"{p['name']} missing_dependencies {md}")
        only_broken = all(not p.get(k) for p in rep["packages"] for k in ("modified", "missing", "extra"))
        if problems:
            raise Violation("verify-not-ok", f"after {cmdline}: {problems}; {out[:800]}")
        if rep["ok"] != (rc == 0):
            raise Violation("verify-exit", f"after {cmdline}: ok={rep['ok']} rc={rc}")
        if not rep["ok"] and not any(p.get("missing_dependencies") for p in rep["packages"]):
            raise Violation("verify-not-ok", f"after {cmdline}: ok false without findings: {out[:800]}")
        _ = only_broken


# --------------------------------------------------------------- generation


def gen_event(rng, r, pending):
    inst = {n: v for n, (v, _) in r.lock().items()}
    x = rng.random()
    if pending and x < 0.17:
        return dict(cmd="publish", **dict(zip(("name", "version", "deps"), pending.pop(rng.randrange(len(pending))))))
    names = [n for n in r.names if n != "ghost"] or r.names
    pick_inst = lambda: rng.choice(sorted(inst)) if inst and rng.random() < 0.85 else rng.choice(r.names)
    dry = rng.random() < 0.12
    if x < 0.62:
        k = 1 if rng.random() < 0.75 else 2
        chosen = rng.sample(names, min(k, len(names)))
        if rng.random() < 0.03:
            chosen[0] = rng.choice(["ghost", "nope"])
        specs = []
        for n in chosen:
            if rng.random() < 0.45:
                s = None
            elif rng.random() < 0.08:
                s = rng.choice(INSTALL_REQS_RARE)
            else:
                s = rng.choice(INSTALL_REQS)
            specs.append((n, s))
        return dict(cmd="install", specs=specs, nodeps=rng.random() < 0.35, dry=dry)
    if x < 0.82:
        if rng.random() < 0.4:
            return dict(cmd="update", all=True, names=[], dry=dry)
        k = 1 if rng.random() < 0.8 else 2
        ns = []
        for _ in range(k):
            n = pick_inst()
            if n not in ns:
                ns.append(n)
        return dict(cmd="update", all=False, names=ns, dry=dry)
    return dict(cmd="remove", name=pick_inst(), force=rng.random() < 0.3)


def replay(names, events, stop_kind=None):
    """Run events in a fresh home; return (Violation or None, index)."""
    r = Runner(names)
    try:
        for i, ev in enumerate(events):
            try:
                r.step(ev)
            except Violation as v:
                v.step = i
                return v, r
        return None, r
    finally:
        r.cleanup()


def minimise(names, events, kind, deadline):
    """Delta debugging: a shorter event list that still ends in `kind`."""
    def still(evs):
        v, _ = replay(names, evs)
        return v is not None and v.kind == kind and v.step == len(evs) - 1, v

    cur = list(events)
    # failed commands change nothing: try without all of them at once
    cand = [e for e in cur[:-1] if e.get("_rc", 0) == 0] + cur[-1:]
    if len(cand) < len(cur) and still(cand)[0]:
        cur = cand
    n = 2
    while len(cur) > 1 and time.time() < deadline:
        chunk = max(1, (len(cur) - 1) // n)
        reduced = False
        i = 0
        while i < len(cur) - 1 and time.time() < deadline:
            cand = cur[:i] + cur[i + chunk:]
            if cand and cand[-1] is cur[-1]:
                ok, _ = still(cand)
                if ok:
                    cur = cand
                    reduced = True
                    continue
            i += chunk
        if not reduced:
            if chunk == 1:
                break
            n = min(n * 2, len(cur))
    # simplify: drop --json-irrelevant dry flags, unneeded deps in publishes
    for i, ev in enumerate(cur):
        if time.time() > deadline:
            break
        if ev.get("dry"):
            cand = cur[:i] + [dict(ev, dry=False)] + cur[i + 1:]
            if still(cand)[0]:
                cur = cand
        if ev["cmd"] == "publish":
            for d in list(ev["deps"]):
                deps = dict(cur[i]["deps"])
                del deps[d]
                cand = cur[:i] + [dict(cur[i], deps=deps)] + cur[i + 1:]
                if still(cand)[0]:
                    cur = cand
    v, _ = replay(names, cur)
    return cur, v


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def write_repro(path, events, v):
    lines = ["#!/bin/sh", f"# {v.kind}", "# " + v.detail.replace("\n", "\n# "), "",
             f'BIN=${{BIN:-{BIN}}}', 'export GGEN_HOME=$(mktemp -d)', 'export NO_COLOR=1',
             'S=$GGEN_HOME/src', 'pub() { mkdir -p "$S/$1-$2"; printf \'{"name":"%s","version":"%s","description":"%s %s","dependencies":%s}\' "$1" "$2" "$1" "$2" "$3" > "$S/$1-$2/package.json"; "$BIN" marketplace publish "$S/$1-$2" >/dev/null || echo "publish $1@$2 failed"; }',
             'run() { echo "\\$ ggen $*"; "$BIN" "$@" >$GGEN_HOME/out 2>&1; rc=$?; grep -v \'^\\(fetch\\|unpack\\) \' $GGEN_HOME/out; echo "  (exit $rc)"; }', ""]
    for ev in events:
        if ev["cmd"] == "publish":
            lines.append(f"pub {ev['name']} {ev['version']} {shq(json.dumps(ev['deps']))}")
        else:
            argv = Runner.argv(None, dict(ev))
            argv = [a for a in argv if a != "--json"]
            lines.append("run " + " ".join(shq(a) if any(c in a for c in " <>*^~=,") else a for a in argv))
    lines += ["", "echo '--- installed (ggen.lock):'",
              "python3 -c 'import json,sys; [print(\" \", p[\"name\"], p[\"version\"], p[\"dependencies\"]) for p in json.load(open(sys.argv[1]))[\"packages\"]]' \"$GGEN_HOME/packages/ggen.lock\" 2>/dev/null",
              "echo '--- verify:'", '"$BIN" marketplace verify 2>&1 | tail -5', 'rm -rf "$GGEN_HOME"', ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, 0o755)


def ensure_cache():
    if os.path.isdir(CACHE_TEMPLATE):
        return
    home = tempfile.mkdtemp(prefix="warm-", dir=TMP)
    d = os.path.join(home, "p")
    os.makedirs(d)
    with open(os.path.join(d, "package.json"), "w") as f:
        json.dump({"name": "warm", "version": "1.0.0", "description": "w"}, f)
    subprocess.run([BIN, "marketplace", "publish", d], env=dict(os.environ, GGEN_HOME=home), capture_output=True)
    tmp = CACHE_TEMPLATE + f".{os.getpid()}"
    shutil.copytree(os.path.join(home, "cache", "plugins"), tmp)
    try:
        os.rename(tmp, CACHE_TEMPLATE)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def run_seed(seed, steps, minimise_budget=240):
    rng = random.Random(seed)
    names, initial, pending = gen_registry(rng)
    events = [dict(cmd="publish", name=n, version=v, deps=d) for n, v, d in initial]
    r = Runner(names)
    result = {"seed": seed, "steps": 0, "cmds": 0, "failed_cmds": 0}
    try:
        for ev in events:
            r.step(ev)
        for i in range(steps):
            ev = gen_event(rng, r, pending)
            events.append(ev)
            r.step(ev)
            result["steps"] = i + 1
    except Violation as v:
        result.update(cmds=r.stats["cmds"], failed_cmds=r.stats["fail"], known=r.stats.get("known", {}))
        r.cleanup()
        result["violation"] = v.kind
        result["detail"] = v.detail
        seen_path = os.path.join(OUT, "seen-kinds.txt")
        seen = set(open(seen_path).read().split()) if os.path.exists(seen_path) else set()
        key = v.kind
        if key in seen and len(seen_counts(key)) >= 3:
            result["minimised"] = False
            return result
        small, v2 = minimise(names, events, v.kind, time.time() + minimise_budget)
        path = os.path.join(OUT, f"repro-{v.kind}-{seed}.sh")
        write_repro(path, small, v2 or v)
        result["repro"] = path
        result["repro_events"] = len(small)
        result["repro_detail"] = (v2 or v).detail
        with open(seen_path, "a") as f:
            f.write(key + "\n")
        return result
    result.update(cmds=r.stats["cmds"], failed_cmds=r.stats["fail"], known=r.stats.get("known", {}))
    r.cleanup()
    return result


def seen_counts(key):
    seen_path = os.path.join(OUT, "seen-kinds.txt")
    if not os.path.exists(seen_path):
        return []
    return [k for k in open(seen_path).read().split() if k == key]


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    seed, steps = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.makedirs(TMP, exist_ok=True)
    ensure_cache()
    for s in range(seed, seed + count):
        t = time.time()
        res = run_seed(s, steps)
        res["secs"] = round(time.time() - t, 1)
        with open(os.path.join(OUT, "results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
        msg = f"seed {s}: {res['steps']} steps, {res['cmds']} cmds ({res['failed_cmds']} failed), {res['secs']}s"
        if "violation" in res:
            msg += f"  VIOLATION {res['violation']}: {res['detail'].splitlines()[0][:300]}"
            if res.get("repro"):
                msg += f"  -> {res['repro']} ({res['repro_events']} events)"
        print(msg, flush=True)


if __name__ == "__main__":
    main()
