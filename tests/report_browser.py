"""The HTML investigation report in a real browser (issue 7 part 3).

Renders reports headless in Debian's Chromium from file:// URLs and checks, from the DOM after
the page's script ran and from the browser's console log:

- the fixture scenario (every sequence of fixtures/, and the main one alone): one timeline
  entry per signal (as many as the ASFF finding has) and one SVG node per entity of the
  sequence's subgraph (as many as `correlator graph --sequence ID` exports);
- a 200-signal sequence: one entry per signal, a capped drawing;
- a report of hostile input (markup in a session name, a domain, an error code): nothing
  injected runs or appears;
- no console message at all (errors, uncaught exceptions, blocked loads);
- and that these checks fail on deliberately broken copies (a script error, a network load).

Screenshots go to the artefacts folder (report.png is the README's).

Usage: report_browser.py [--correlator target/debug/correlator] [--chromium /usr/bin/chromium]
                         [--artefacts target/test-artefacts]
"""

import argparse
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = ["fixtures/cloudtrail", "fixtures/guardduty", "fixtures/asff"]
WEB_ASG = (
    "finding-correlator/compromised-instance-group/111122223333/us-east-1/"
    "auto_scaling_group/web-asg/2025-05-02T09:01:27.000Z"
)
HOSTILE = (
    "</title></script><script>document.title='PWNED'</script>"
    "<img src=x onerror=\"document.title='PWNED'\">"
)


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# --------------------------------------------------------------------------------------------
# Running things.


def run(cmd, **kw):
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, timeout=300, **kw)
    if p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    return p.stdout


class Chromium:
    FLAGS = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Nothing resolves: a page that tried the network would log an error.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ]

    def __init__(self, path):
        self.path = path

    def _run(self, url, extra):
        with tempfile.TemporaryDirectory(prefix="report-browser-") as profile:
            cmd = [self.path, *self.FLAGS, f"--user-data-dir={profile}", *extra, url]
            try:
                p = subprocess.run(cmd, capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                # A page that opens a dialog (alert) never finishes loading headless.
                raise Failure(f"chromium did not finish rendering {url} in 60 s (a dialog?)")
        if p.returncode != 0:
            raise Failure(f"chromium exited {p.returncode}: {p.stderr.decode()[-2000:]}")
        return p.stdout.decode(), p.stderr.decode()

    def dom(self, path, fragment=""):
        """The DOM after the page's scripts ran, and every console message it logged."""
        out, err = self._run(
            "file://" + os.path.abspath(path) + fragment,
            ["--enable-logging=stderr", "--v=0", "--dump-dom"],
        )
        console = [line for line in err.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
        return out, console

    def screenshot(self, path, png, height=1000, fragment=""):
        self._run(
            "file://" + os.path.abspath(path) + fragment,
            [f"--screenshot={os.path.abspath(png)}", f"--window-size=1400,{height}"],
        )
        with open(png, "rb") as f:
            head = f.read(24)
        check(head[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG")
        width, h = struct.unpack(">II", head[16:24])
        check((width, h) == (1400, height), f"{png} is {width}x{h}")
        # A blank page compresses to a few kilobytes.
        check(os.path.getsize(png) > 40_000, f"{png} looks blank ({os.path.getsize(png)} bytes)")


# --------------------------------------------------------------------------------------------
# The DOM as a tree.


class Element:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []
        self.text = []

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, tag=None, cls=None):
        return [
            e
            for e in self.walk()
            if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
        ]

    def all_text(self):
        return "".join(self.text) + "".join(c.all_text() for c in self.children)


class Tree(html.parser.HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "embed",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", [], None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        e = Element(tag, attrs, self.cur)
        self.cur.children.append(e)
        if tag not in self.VOID:
            self.cur = e

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Element(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        e = self.cur
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.cur = e.parent

    def handle_data(self, data):
        self.cur.text.append(data)


def parse(dom):
    t = Tree()
    t.feed(dom)
    return t.root


# --------------------------------------------------------------------------------------------
# Checks.


def check_page(browser, path, expect):
    """Renders `path`; checks the script ran, nothing was logged, and per section the counts
    `expect` gives: {finding id: (signals, entities)}. Returns the DOM tree."""
    dom, console = browser.dom(path)
    check(not console, f"{path}: console messages:\n" + "\n".join(console))
    root = parse(dom)
    htmls = root.find("html")
    check(htmls and htmls[0].attrs.get("data-js") == "ready", f"{path}: the script did not finish")
    check(len(root.find("script")) == 1, f"{path}: {len(root.find('script'))} script elements")
    for e in root.walk():
        for a in ("src", "srcset", "data", "poster"):
            check(a not in e.attrs, f"{path}: <{e.tag} {a}=…> would load something")
        href = e.attrs.get("href") or ""
        if href.lower().startswith(("http:", "https:", "//")):
            check(e.tag == "a", f"{path}: <{e.tag} href={href}> would load something")
    sections = root.find("section", "sequence")
    check(len(sections) == len(expect), f"{path}: {len(sections)} sections, want {len(expect)}")
    for sec in sections:
        fid = next(c.all_text() for c in sec.find("code", "select"))
        check(fid in expect, f"{path}: unexpected sequence {fid}")
        signals, entities = expect[fid]
        entries = [li for li in sec.find("li") if "signal" in li.classes]
        check(len(entries) == signals, f"{fid}: {len(entries)} timeline entries, want {signals}")
        check(int(sec.attrs["data-signals"]) == signals, f"{fid}: data-signals")
        graphs = sec.find("svg", "graph")
        check(len(graphs) == 1, f"{fid}: {len(graphs)} graph drawings")
        svg = graphs[0]
        nodes = svg.find("g", "node")
        drawn, hidden = int(svg.attrs["data-drawn"]), int(svg.attrs["data-hidden"])
        check(int(svg.attrs["data-entities"]) == entities, f"{fid}: data-entities")
        check(len(nodes) == drawn, f"{fid}: {len(nodes)} nodes, data-drawn {drawn}")
        more = sum(int(m.attrs["data-count"]) for m in svg.find("g", "more"))
        check(drawn + hidden == entities and more == hidden, f"{fid}: drawn + hidden")
        if hidden == 0:
            check(len(nodes) == entities, f"{fid}: {len(nodes)} SVG nodes, want {entities}")
        # Each entry's details exist, and the nodes it highlights are drawn.
        ids = {t.attrs.get("id") for t in sec.find("template")}
        for li in entries:
            check(li.attrs["data-tpl"] in ids, f"{fid}: no details for {li.attrs['data-tpl']}")
            for n in li.attrs.get("data-nodes", "").split():
                check(int(n) < drawn, f"{fid}: entry names node {n} of {drawn}")
    return root


def expectations(correlator, paths, ids=None):
    """{finding id: (signals, entities)} from the ASFF findings and the graph export."""
    doc = json.loads(run([correlator, "correlate", "--asff", "-", *paths]))
    out = {}
    for f in doc["Findings"]:
        fid = f["Id"]
        if ids is not None and fid not in ids:
            continue
        g = json.loads(run([correlator, "graph", "--no-signals", "--sequence", fid, *paths]))
        out[fid] = (len(f["Detection"]["Sequence"]["Signals"]), len(g["elements"]["nodes"]))
    return out


def check_selection(browser, path, correlator):
    """The script's hover/click behaviour, through the page's own links to a selection
    (`#pin=…` runs the same code as a click): a signal shows its details (its record
    reference, as the ASFF finding has it) and highlights the nodes it names; an entity
    highlights the signals that name it, as many as its badge (counted in Rust) says."""
    doc = json.loads(run([correlator, "correlate", "--asff", "-", *MAIN]))
    finding = next(f for f in doc["Findings"] if f["Id"] == WEB_ASG)
    signals = finding["Detection"]["Sequence"]["Signals"]
    for i in (1, 4, 12):
        dom, console = browser.dom(path, f"#pin=s1-sig-{i}")
        check(not console, f"#pin=s1-sig-{i}: console messages:\n" + "\n".join(console))
        root = parse(dom)
        entry = [li for li in root.find("li") if li.attrs.get("data-i") == str(i)][0]
        check("pinned" in entry.classes, f"#pin=s1-sig-{i}: the entry is not selected")
        details = root.find("aside", "details")[0].all_text()
        check(signals[i]["Id"] in details,
              f"#pin=s1-sig-{i}: details lack the record {signals[i]['Id']}: {details[:300]}")
        check(signals[i]["Name"] in details, f"#pin=s1-sig-{i}: details lack {signals[i]['Name']}")
        lit = {g.attrs["data-n"] for g in root.find("g", "node") if "hl" in g.classes}
        want = set(entry.attrs["data-nodes"].split())
        check(want and lit == want, f"#pin=s1-sig-{i}: highlighted {lit}, want {want}")
    dom, _ = browser.dom(path)
    nodes = parse(dom).find("g", "node")
    victim = next(g for g in nodes if "i-0aaaaaaaaaaaaaaa1" in g.find("title")[0].all_text())
    n = victim.attrs["data-n"]
    badge = int(victim.find("g", "badge")[0].find("text")[0].all_text())
    dom, console = browser.dom(path, f"#pin=s1-n-{n}")
    check(not console, f"#pin=s1-n-{n}: console messages:\n" + "\n".join(console))
    root = parse(dom)
    related = [li for li in root.find("li") if "related" in li.classes]
    check(len(related) == badge, f"#pin=s1-n-{n}: {len(related)} related signals, badge {badge}")
    check(all(n in li.attrs["data-nodes"].split() for li in related), "unrelated entry marked")
    details = root.find("aside", "details")[0].all_text()
    check("instance:i-0aaaaaaaaaaaaaaa1" in details, f"#pin=s1-n-{n}: details {details[:200]}")
    return badge


def busy_input(folder):
    """200 RunInstances by one user, each from its own AMI and address; every tenth fails."""
    records = []
    for i in range(200):
        r = {
            "eventVersion": "1.10",
            "userIdentity": {
                "type": "IAMUser", "principalId": "AIDAEXAMPLEBUSY0001",
                "arn": "arn:aws:iam::111122223333:user/busy", "accountId": "111122223333",
                "accessKeyId": "AKIAEXAMPLEBUSY0001", "userName": "busy",
            },
            "eventTime": "2025-05-02T10:%02d:%02dZ" % (i // 4, (i % 4) * 15),
            "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
            "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.%d" % (i % 250),
            "requestParameters": {"instanceType": "c5.large"},
            "responseElements": {"instancesSet": {"items": [{
                "instanceId": "i-0%016x" % i, "imageId": "ami-0%016x" % i,
                "instanceType": "c5.large", "subnetId": "subnet-0%016x" % i,
                "vpcId": "vpc-0aaaaaaaaaaaaaaa1",
            }]}},
            "eventID": "00000000-0000-4000-8000-%012d" % i,
            "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
        }
        if i % 10 == 9:
            r["errorCode"] = "Client.InstanceLimitExceeded"
            r["responseElements"] = None
        records.append(r)
    os.makedirs(os.path.join(folder, "rules"))
    with open(os.path.join(folder, "busy.json"), "w") as f:
        json.dump({"Records": records}, f)
    with open(os.path.join(folder, "rules", "busy.yaml"), "w") as f:
        f.write(
            "id: busy\ntitle: Busy launcher\ndescription: Every launch.\nseverity: MEDIUM\n"
            "types: [\"TTPs/Impact\"]\nrunbook: Look.\nstages:\n  - name: launch\n"
            "    select:\n      events: [RunInstances]\ngroup_by: principal\nwindow: 2h\n"
            "condition:\n  require: [launch]\n"
        )


def hostile_input(folder):
    """A DNS finding whose domain and title, and a RunInstances whose session name and error
    code, hold markup; a rule over both whose own texts hold markup too."""
    with open(os.path.join(REPO, "fixtures/guardduty/eventbridge-guardduty.json")) as f:
        finding = json.load(f)
    finding["detail"]["service"]["action"]["dnsRequestAction"]["domain"] = HOSTILE
    finding["detail"]["title"] = HOSTILE
    launch = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole", "principalId": "AROAEXAMPLEHOSTILE01:" + HOSTILE,
            "arn": "arn:aws:sts::111122223333:assumed-role/hostile/" + HOSTILE,
            "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLEHOSTILE01",
        },
        "eventTime": "2025-05-02T09:10:00Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.66", "userAgent": HOSTILE, "errorCode": HOSTILE,
        "requestParameters": {"instanceType": HOSTILE}, "responseElements": None,
        "eventID": "99999999-0000-4000-8000-000000000001", "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    os.makedirs(os.path.join(folder, "rules"))
    with open(os.path.join(folder, "finding.json"), "w") as f:
        json.dump(finding, f)
    with open(os.path.join(folder, "trail.json"), "w") as f:
        json.dump({"Records": [launch]}, f)
    with open(os.path.join(folder, "rules", "hostile-test.yaml"), "w") as f:
        f.write(
            'id: hostile-test\ntitle: "Rule <img src=x onerror=alert(1)>"\n'
            'description: "<script>alert(2)</script>"\nseverity: HIGH\n'
            'types: ["TTPs/Impact"]\nrunbook: "<b>look</b>"\n'
            'runbook_url: "javascript:alert(3)"\nstages:\n  - name: dns\n    select:\n'
            '      finding_types: ["Impact:*"]\n  - name: launch\n    select:\n'
            "      events: [RunInstances]\ngroup_by: account\nwindow: 2h\ncondition:\n"
            "  require: [dns, launch]\n"
        )


def expect_failure(what, f):
    try:
        f()
    except Failure as e:
        lines = str(e).splitlines()
        print(f"ok    the checks catch {what}: {' '.join(lines[:2])[:160]}")
        return
    raise Failure(f"the checks did not catch {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--correlator", default=os.path.join(REPO, "target/debug/correlator"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--artefacts", default=os.path.join(REPO, "target/test-artefacts"))
    args = ap.parse_args()
    correlator = os.path.abspath(args.correlator)
    browser = Chromium(args.chromium)
    art = os.path.abspath(args.artefacts)
    os.makedirs(art, exist_ok=True)

    # The main scenario's critical sequence alone: the README's screenshot.
    one = os.path.join(art, "report.html")
    run([correlator, "report", "--sequence", WEB_ASG, "--output", one, *MAIN])
    want = expectations(correlator, MAIN, {WEB_ASG})
    check(want[WEB_ASG] == (13, 37), f"the scenario changed: {want}")
    check_page(browser, one, want)
    browser.screenshot(one, os.path.join(art, "report.png"))
    print(f"ok    {one}: 13 timeline entries, 37 SVG nodes; screenshot report.png")
    badge = check_selection(browser, one, correlator)
    # The whole page with a signal selected: the README's picture (docs/report.png).
    browser.screenshot(one, os.path.join(art, "report-selected.png"), 1900, "#pin=s1-sig-1")
    print(f"ok    {one}: a selected signal shows its record and its nodes; the victim's "
          f"{badge} signals; screenshot report-selected.png")

    # Every sequence of fixtures/, with the index.
    every = os.path.join(art, "report-fixtures.html")
    run([correlator, "report", "--output", every, "fixtures/"])
    want = expectations(correlator, ["fixtures/"])
    check(len(want) == 12, f"{len(want)} findings in fixtures/")
    root = check_page(browser, every, want)
    check(len(root.find("nav", "index")) == 1, "no index")
    browser.screenshot(every, os.path.join(art, "report-fixtures.png"))
    print(f"ok    {every}: {len(want)} sequences, each entry and node counted")

    with tempfile.TemporaryDirectory(prefix="report-inputs-") as tmp:
        busy = os.path.join(tmp, "busy")
        busy_input(busy)
        page = os.path.join(art, "report-200-signals.html")
        run([correlator, "report", "--rules", os.path.join(busy, "rules"), "--output", page,
             os.path.join(busy, "busy.json")])
        fid = "finding-correlator/busy/111122223333/us-east-1/principal/AIDAEXAMPLEBUSY0001/2025-05-02T10:00:00.000Z"
        entities = len(json.loads(run([
            correlator, "graph", "--no-signals", "--rules", os.path.join(busy, "rules"),
            "--sequence", fid, os.path.join(busy, "busy.json")]))["elements"]["nodes"])
        root = check_page(browser, page, {fid: (200, entities)})
        drawn = len(root.find("g", "node"))
        check(drawn <= 80, f"{drawn} nodes drawn of {entities}")
        browser.screenshot(page, os.path.join(art, "report-200-signals.png"))
        print(f"ok    {page}: 200 timeline entries, {drawn} of {entities} entities drawn")

        hostile = os.path.join(tmp, "hostile")
        hostile_input(hostile)
        page = os.path.join(art, "report-hostile.html")
        run([correlator, "report", "--rules", os.path.join(hostile, "rules"), "--output", page,
             os.path.join(hostile, "finding.json"), os.path.join(hostile, "trail.json")])
        dom, console = browser.dom(page)
        check(not console, "hostile report: console messages:\n" + "\n".join(console))
        root = parse(dom)
        title = root.find("title")[0].all_text()
        check("PWNED" not in title, f"hostile report: injected script ran: {title}")
        check(not root.find("img") and not root.find("b"), "hostile report: injected elements")
        check(len(root.find("script")) == 1, "hostile report: injected script element")
        check(HOSTILE in dom.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
              .replace("&quot;", '"'), "hostile report: the value is not shown as text")
        check(not any((e.attrs.get("href") or "").startswith("javascript:") for e in root.walk()),
              "hostile report: a javascript: link")
        print(f"ok    {page}: markup in records and rules stays text")

        # The checks themselves: a broken script and a network load must fail them.
        with open(one) as f:
            good = f.read()
        broken = os.path.join(tmp, "broken-script.html")
        with open(broken, "w") as f:
            f.write(good.replace('"use strict";', '"use strict"; notDefinedAnywhere();', 1))
        expect_failure("a script error", lambda: check_page(browser, broken, {WEB_ASG: (13, 37)}))
        loads = os.path.join(tmp, "network-load.html")
        with open(loads, "w") as f:
            f.write(good.replace("</main>", '<img src="https://example.com/x.png" /></main>', 1))
        expect_failure("a network load", lambda: check_page(browser, loads, {WEB_ASG: (13, 37)}))
        logs = os.path.join(tmp, "console-error.html")
        with open(logs, "w") as f:
            f.write(good.replace('"use strict";', '"use strict"; console.error("x");', 1))
        expect_failure("a console error", lambda: check_page(browser, logs, {WEB_ASG: (13, 37)}))
        short = os.path.join(tmp, "missing-entry.html")
        with open(short, "w") as f:
            f.write(good.replace('<li class="signal ', '<li class="gone ', 1))
        expect_failure("a missing timeline entry",
                       lambda: check_page(browser, short, {WEB_ASG: (13, 37)}))


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL  {e}", file=sys.stderr)
        sys.exit(1)
