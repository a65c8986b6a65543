//! The four graph exports side by side: GraphML, the Neo4j Cypher script, Cytoscape.js JSON
//! and DOT carry the same nodes, edges and (typed) properties, read back by the tools they are
//! for (networkx for GraphML and JSON, Graphviz for DOT, a parser of the emitted statements
//! for Cypher); values with quotes, backslashes, markup and newlines survive every format; the
//! same input gives the same bytes.
//!
//! The JSON export is the reference every other format is compared with.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use finding_correlator::config::Config;
use finding_correlator::graph::EntityGraph;
use finding_correlator::graph::export::{self, ExportGraph, Format};
use finding_correlator::pipeline;
use finding_correlator::report;
use finding_correlator::rules::RuleSet;

use crate::common::{WEB_ASG_SEQUENCE, correlator, python, repo};

/// A value with quotes of both kinds, a backslash, markup, a newline, the end of a CDATA
/// section and a non-ASCII letter.
const WEIRD: &str = "a\"b\\c<&>'d\ne]]>\u{fc}";

// ---------------------------------------------------------------------------------------------
// Inputs.

/// The main scenario (not the per-rule scenarios of `fixtures/scenarios/`).
fn main_scenario() -> Vec<PathBuf> {
    ["cloudtrail", "guardduty", "asff"]
        .iter()
        .map(|d| repo().join("fixtures").join(d))
        .collect()
}

fn build(paths: &[PathBuf]) -> EntityGraph {
    pipeline::build_graph(paths, &Config::default().validate().unwrap(), true).graph
}

fn scenario() -> EntityGraph {
    build(&main_scenario())
}

/// A CloudTrail S3 log file with two `RunInstances` records whose user name, ARN, instance
/// type, Auto Scaling group name, launch template version, user agent and error code are all
/// [`WEIRD`]: it ends up in node ids, labels and properties.
fn weird_input(dir: &Path) -> PathBuf {
    let tags: Vec<Value> = [
        ("Name", WEIRD),
        ("aws:autoscaling:groupName", WEIRD),
        ("aws:ec2launchtemplate:id", "lt-0eeeeeeeeeeeeeee1"),
        ("aws:ec2launchtemplate:version", WEIRD),
    ]
    .iter()
    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
    .collect();
    let launched = serde_json::json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEWEIRD0001",
            "arn": format!("arn:aws:iam::111122223333:user/{WEIRD}"),
            "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLEWEIRD0001",
            "userName": WEIRD
        },
        "eventTime": "2025-05-02T09:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": WEIRD,
        "requestParameters": {
            "instanceType": WEIRD,
            "instancesSet": {"items": [{"imageId": "ami-0123456789abcdef0", "minCount": 1, "maxCount": 1}]}
        },
        "responseElements": {"instancesSet": {"items": [{
            "instanceId": "i-0eeeeeeeeeeeeeee1",
            "imageId": "ami-0123456789abcdef0",
            "instanceType": WEIRD,
            "cpuOptions": {"coreCount": 2, "threadsPerCore": 2},
            "vpcId": "vpc-0eeeeeeeeeeeeeee1",
            "subnetId": "subnet-0eeeeeeeeeeeeeee1",
            "tagSet": {"items": tags}
        }]}},
        "eventID": "11111111-2222-3333-4444-555555555555",
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    });
    let mut failed = launched.clone();
    failed["eventID"] = "11111111-2222-3333-4444-666666666666".into();
    failed["eventTime"] = "2025-05-02T09:01:00Z".into();
    failed["errorCode"] = WEIRD.into();
    failed["errorMessage"] = WEIRD.into();
    failed["responseElements"] = Value::Null;
    let path = dir.join("weird.json");
    let doc = serde_json::json!({ "Records": [launched, failed] });
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    path
}

fn export(g: &EntityGraph, format: Format) -> String {
    let mut out = Vec::new();
    export::write(g, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// What the checks export: a whole graph, or a part of one (a sequence's neighbourhood).
trait Exported {
    fn export(&self, format: Format) -> String;
}

impl Exported for EntityGraph {
    fn export(&self, format: Format) -> String {
        export(self, format)
    }
}

impl Exported for ExportGraph<'_> {
    fn export(&self, format: Format) -> String {
        let mut out = Vec::new();
        export::write_model(self, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The reference: what the JSON export says.

type Props = BTreeMap<String, Value>;

/// Nodes by id (properties include `id`, `label`, `kind`); edges by (source, target, kind)
/// (properties include `id` and `kind`).
#[derive(Debug, Default, PartialEq)]
struct Elements {
    nodes: BTreeMap<String, Props>,
    edges: BTreeMap<(String, String, String), Props>,
}

impl Elements {
    fn add_node(&mut self, props: Props, from: &str) {
        let id = props["id"].as_str().expect("node id").to_string();
        assert!(
            self.nodes.insert(id.clone(), props).is_none(),
            "{from}: node {id:?} twice"
        );
    }

    fn add_edge(&mut self, source: &str, target: &str, props: Props, from: &str) {
        let kind = props["kind"].as_str().expect("edge kind").to_string();
        let key = (source.to_string(), target.to_string(), kind);
        assert!(
            self.edges.insert(key.clone(), props).is_none(),
            "{from}: edge {key:?} twice"
        );
    }
}

fn from_json(text: &str) -> Elements {
    let doc: Value = serde_json::from_str(text).expect("the JSON export is JSON");
    let mut el = Elements::default();
    for n in doc["elements"]["nodes"].as_array().expect("elements.nodes") {
        let mut data = n["data"].as_object().expect("node data").clone();
        let value = data.remove("value");
        assert_eq!(value.as_ref(), data.get("id"), "value is the id: {n}");
        el.add_node(data.into_iter().collect(), "json");
    }
    for e in doc["elements"]["edges"].as_array().expect("elements.edges") {
        let mut data = e["data"].as_object().expect("edge data").clone();
        let s = data.remove("source").expect("source");
        let t = data.remove("target").expect("target");
        el.add_edge(
            s.as_str().unwrap(),
            t.as_str().unwrap(),
            data.into_iter().collect(),
            "json",
        );
    }
    el
}

/// Python's name for the type a JSON value reads as.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "str",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        _ => "other",
    }
}

/// A value as text (what DOT writes): numbers as JSON writes them.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn assert_same(what: &str, got: &Elements, want: &Elements) {
    assert_eq!(got.nodes.len(), want.nodes.len(), "{what}: node count");
    assert_eq!(got.edges.len(), want.edges.len(), "{what}: edge count");
    for (id, props) in &want.nodes {
        assert_eq!(got.nodes.get(id), Some(props), "{what}: node {id:?}");
    }
    for (key, props) in &want.edges {
        assert_eq!(got.edges.get(key), Some(props), "{what}: edge {key:?}");
    }
    assert!(got == want, "{what} differs from the JSON export");
}

// ---------------------------------------------------------------------------------------------
// Python and networkx.

/// Reads a graph with networkx and prints it as JSON, each value as `[python type, value]`.
const NETWORKX_DUMP: &str = r#"
import json, sys
import networkx as nx
mode, path = sys.argv[1], sys.argv[2]
if mode == "graphml":
    g = nx.read_graphml(path)
else:
    with open(path, encoding="utf-8") as f:
        g = nx.cytoscape_graph(json.load(f))
typed = lambda d: {k: [type(v).__name__, v] for k, v in d.items()}
json.dump({
    "class": type(g).__name__,
    "nodes": [[n, typed(d)] for n, d in g.nodes(data=True)],
    "edges": [[s, t, typed(d)] for s, t, d in g.edges(data=True)],
}, sys.stdout, ensure_ascii=False)
"#;

/// Checks a GraphML document against the rules of the GraphML schema
/// (graphml-structure.xsd, graphml-attributes.xsd) with the standard library's XML parser, and
/// for the conventions of this export: `labelV` on every node, `labelE` on every edge.
const GRAPHML_CHECK: &str = r#"
import json, re, sys
import xml.etree.ElementTree as ET
NS = "{http://graphml.graphdrawing.org/xmlns}"
# xs:NMTOKEN, restricted to the ASCII characters the export writes.
NMTOKEN = re.compile(r"^[A-Za-z0-9._:-]+$")
TYPES = {"boolean", "int", "long", "float", "double", "string"}
problems = []
root = ET.parse(sys.argv[1]).getroot()
if root.tag != NS + "graphml":
    problems.append("root element " + root.tag)
keys, graphs, seen_graph = {}, [], False
for c in root:
    if c.tag == NS + "key":
        if seen_graph:
            problems.append("key after graph")
        kid, name, t = c.get("id"), c.get("attr.name"), c.get("attr.type", "string")
        if kid is None or not NMTOKEN.match(kid):
            problems.append("key id %r" % kid)
        if kid in keys:
            problems.append("duplicate key id %r" % kid)
        if name is None or not NMTOKEN.match(name):
            problems.append("attr.name %r" % name)
        if t not in TYPES:
            problems.append("attr.type %r" % t)
        dom = c.get("for", "all")
        if dom not in {"graphml", "graph", "node", "edge", "hyperedge", "port", "endpoint", "all"}:
            problems.append("key for %r" % dom)
        keys[kid] = {"for": dom, "name": name, "type": t}
    elif c.tag == NS + "graph":
        seen_graph = True
        graphs.append(c)
    else:
        problems.append("unexpected " + c.tag)
if len(graphs) != 1:
    problems.append("%d graphs" % len(graphs))
def check_data(el, domain, label_key):
    found = set()
    for d in el:
        if d.tag != NS + "data":
            problems.append("unexpected %s in %s" % (d.tag, domain))
            continue
        k = keys.get(d.get("key"))
        if k is None:
            problems.append("undeclared key %r" % d.get("key"))
            continue
        if k["for"] not in (domain, "all"):
            problems.append("key %r is for %s, used on a %s" % (d.get("key"), k["for"], domain))
        if list(d):
            problems.append("data with child elements")
        v = d.text or ""
        try:
            if k["type"] in ("int", "long"):
                int(v)
            elif k["type"] in ("float", "double"):
                float(v)
            elif k["type"] == "boolean" and v not in ("true", "false"):
                raise ValueError(v)
        except ValueError:
            problems.append("%r is not a %s (key %r)" % (v, k["type"], d.get("key")))
        if d.get("key") in found:
            problems.append("key %r twice on one %s" % (d.get("key"), domain))
        found.add(d.get("key"))
    if label_key not in found:
        problems.append("%s without %s" % (domain, label_key))
node_ids, edge_ids, edges = set(), set(), []
g = graphs[0] if graphs else ET.Element("graph")
if g.get("edgedefault") != "directed":
    problems.append("edgedefault %r" % g.get("edgedefault"))
for el in g:
    if el.tag == NS + "node":
        nid = el.get("id")
        if nid is None or not NMTOKEN.match(nid):
            problems.append("node id %r is not an NMTOKEN" % nid)
        if nid in node_ids:
            problems.append("duplicate node id %r" % nid)
        node_ids.add(nid)
        check_data(el, "node", "labelV")
    elif el.tag == NS + "edge":
        edges.append(el)
        eid = el.get("id")
        if eid is not None:
            if not NMTOKEN.match(eid) or eid in edge_ids:
                problems.append("edge id %r" % eid)
            edge_ids.add(eid)
        check_data(el, "edge", "labelE")
    else:
        problems.append("unexpected %s in graph" % el.tag)
for el in edges:
    for end in ("source", "target"):
        if el.get(end) not in node_ids:
            problems.append("edge %s %r is not a node" % (end, el.get(end)))
json.dump({"problems": problems, "keys": keys, "nodes": len(node_ids), "edges": len(edges)},
          sys.stdout)
"#;

fn run_python(args: &[&OsStr]) -> Value {
    let py = python();
    let out = Command::new(&py)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'networkx'"),
        "networkx is not installed in {}: run `bash tests/run.sh` (it installs \
         tests/requirements.txt), or `{} -m pip install -r tests/requirements.txt`",
        py.display(),
        py.display()
    );
    assert!(out.status.success(), "python failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// A `[python type, value]` map as properties, checking that each value has the type it says.
fn typed_props(d: &Value) -> Props {
    d.as_object()
        .expect("data")
        .iter()
        .map(|(k, tv)| {
            let (t, v) = (tv[0].as_str().unwrap(), &tv[1]);
            assert_eq!(t, py_type(v), "type of {k} = {v}");
            (k.clone(), v.clone())
        })
        .collect()
}

/// The GraphML read back by networkx, with the GraphML-only keys checked and taken out:
/// `labelV` is the node kind, `labelE` the edge kind; nodes are named by their `id` property.
fn graphml_by_networkx(path: &Path) -> Elements {
    let doc = run_python(&[
        OsStr::new("-c"),
        OsStr::new(NETWORKX_DUMP),
        OsStr::new("graphml"),
        path.as_os_str(),
    ]);
    assert_eq!(
        doc["class"], "DiGraph",
        "a directed graph, no parallel edges"
    );
    let mut el = Elements::default();
    let mut id_of = BTreeMap::new();
    for n in doc["nodes"].as_array().unwrap() {
        let key = n[0].as_str().unwrap();
        let mut props = typed_props(&n[1]);
        let label_v = props.remove("labelV").expect("labelV");
        assert_eq!(Some(&label_v), props.get("kind"), "labelV of {key}");
        let id = props["id"].as_str().expect("id property").to_string();
        id_of.insert(key.to_string(), id);
        el.add_node(props, "graphml");
    }
    for e in doc["edges"].as_array().unwrap() {
        let mut props = typed_props(&e[2]);
        let label_e = props.remove("labelE").expect("labelE");
        assert_eq!(Some(&label_e), props.get("kind"), "labelE of {e}");
        el.add_edge(
            &id_of[e[0].as_str().unwrap()],
            &id_of[e[1].as_str().unwrap()],
            props,
            "graphml",
        );
    }
    el
}

/// The JSON read by networkx's Cytoscape reader.
fn json_by_networkx(path: &Path) -> Elements {
    let doc = run_python(&[
        OsStr::new("-c"),
        OsStr::new(NETWORKX_DUMP),
        OsStr::new("cytoscape"),
        path.as_os_str(),
    ]);
    assert_eq!(doc["class"], "DiGraph");
    let mut el = Elements::default();
    for n in doc["nodes"].as_array().unwrap() {
        let mut props = typed_props(&n[1]);
        assert_eq!(props.remove("value").as_ref(), Some(&n[0]), "node key");
        el.add_node(props, "cytoscape");
    }
    for e in doc["edges"].as_array().unwrap() {
        let mut props = typed_props(&e[2]);
        assert_eq!(props.remove("source").as_ref(), Some(&e[0]));
        assert_eq!(props.remove("target").as_ref(), Some(&e[1]));
        el.add_edge(
            e[0].as_str().unwrap(),
            e[1].as_str().unwrap(),
            props,
            "cytoscape",
        );
    }
    el
}

fn check_graphml_structure(path: &Path) -> Value {
    let report = run_python(&[
        OsStr::new("-c"),
        OsStr::new(GRAPHML_CHECK),
        path.as_os_str(),
    ]);
    let problems = report["problems"].as_array().unwrap();
    assert!(problems.is_empty(), "GraphML problems: {problems:#?}");
    report
}

// ---------------------------------------------------------------------------------------------
// A parser of the Cypher statements the export writes.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Num(String),
    Punct(char),
}

fn cypher_tokens(script: &str) -> Vec<Tok> {
    let cs: Vec<char> = script.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && cs.get(i + 1) == Some(&'/') {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let d = *cs.get(i).expect("unterminated string");
                i += 1;
                match d {
                    '\\' => {
                        let e = cs[i];
                        i += 1;
                        match e {
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            'b' => s.push('\u{8}'),
                            'f' => s.push('\u{c}'),
                            '\\' | '\'' | '"' => s.push(e),
                            'u' => {
                                let hex: String = cs[i..i + 4].iter().collect();
                                i += 4;
                                s.push(
                                    char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap(),
                                );
                            }
                            other => panic!("unknown escape \\{other}"),
                        }
                    }
                    d if d == c => break,
                    d => s.push(d),
                }
            }
            out.push(Tok::Str(s));
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            while cs[i] != '`' || cs.get(i + 1) == Some(&'`') {
                if cs[i] == '`' {
                    i += 1;
                }
                s.push(cs[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Word(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(cs[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(cs[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Stmt {
    Constraint {
        label: String,
        property: String,
    },
    /// `MERGE (n:MergeLabel {id: …}) SET n:L1:L2, n += {…}`
    Node {
        merge_label: String,
        id: String,
        labels: Vec<String>,
        props: Props,
    },
    /// `MATCH (a:L {id: …}) MATCH (b:L {id: …}) MERGE (a)-[r:TYPE]->(b) SET r.kind = …`
    Edge {
        match_label: String,
        source: String,
        target: String,
        rel: String,
        props: Props,
    },
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Tok {
        let t = self.toks.get(self.pos).cloned().expect("unexpected end");
        self.pos += 1;
        t
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn punct(&mut self, c: char) {
        assert_eq!(self.next(), Tok::Punct(c), "at token {}", self.pos);
    }
    fn word(&mut self) -> String {
        match self.next() {
            Tok::Word(w) => w,
            t => panic!("expected a name, found {t:?} at token {}", self.pos),
        }
    }
    fn keyword(&mut self, k: &str) {
        let w = self.word();
        assert!(w.eq_ignore_ascii_case(k), "expected {k}, found {w}");
    }
    fn value(&mut self) -> Value {
        let neg = self.peek() == Some(&Tok::Punct('-'));
        if neg {
            self.pos += 1;
        }
        match self.next() {
            Tok::Str(s) => Value::String(s),
            Tok::Word(w) if w == "true" => Value::Bool(true),
            Tok::Word(w) if w == "false" => Value::Bool(false),
            Tok::Num(n) => {
                let n = if neg { format!("-{n}") } else { n };
                if n.contains(['.', 'e', 'E']) {
                    Value::from(n.parse::<f64>().unwrap())
                } else {
                    Value::from(n.parse::<i64>().unwrap())
                }
            }
            t => panic!("expected a literal, found {t:?}"),
        }
    }
    fn map(&mut self) -> Props {
        self.punct('{');
        let mut m = Props::new();
        loop {
            let k = self.word();
            self.punct(':');
            let v = self.value();
            assert!(m.insert(k.clone(), v).is_none(), "{k} twice in a map");
            match self.next() {
                Tok::Punct(',') => continue,
                Tok::Punct('}') => return m,
                t => panic!("expected , or }}, found {t:?}"),
            }
        }
    }
    /// `(var:Label {id: '…'})`: (label, id).
    fn node_pattern(&mut self, var: &str) -> (String, String) {
        self.punct('(');
        assert_eq!(self.word(), var);
        self.punct(':');
        let label = self.word();
        let m = self.map();
        self.punct(')');
        assert_eq!(m.len(), 1, "a pattern on one property: {m:?}");
        (label, m["id"].as_str().expect("id").to_string())
    }

    fn statement(&mut self) -> Stmt {
        let first = self.word().to_ascii_uppercase();
        match first.as_str() {
            "CREATE" => {
                self.keyword("CONSTRAINT");
                let _name = self.word();
                self.keyword("IF");
                self.keyword("NOT");
                self.keyword("EXISTS");
                self.keyword("FOR");
                self.punct('(');
                let var = self.word();
                self.punct(':');
                let label = self.word();
                self.punct(')');
                self.keyword("REQUIRE");
                assert_eq!(self.word(), var);
                self.punct('.');
                let property = self.word();
                self.keyword("IS");
                self.keyword("UNIQUE");
                Stmt::Constraint { label, property }
            }
            "MERGE" => {
                let (merge_label, id) = self.node_pattern("n");
                self.keyword("SET");
                assert_eq!(self.word(), "n");
                let mut labels = Vec::new();
                while self.peek() == Some(&Tok::Punct(':')) {
                    self.pos += 1;
                    labels.push(self.word());
                }
                self.punct(',');
                assert_eq!(self.word(), "n");
                self.punct('+');
                self.punct('=');
                let props = self.map();
                Stmt::Node {
                    merge_label,
                    id,
                    labels,
                    props,
                }
            }
            "MATCH" => {
                let (match_label, source) = self.node_pattern("a");
                self.keyword("MATCH");
                let (l2, target) = self.node_pattern("b");
                assert_eq!(l2, match_label);
                self.keyword("MERGE");
                self.punct('(');
                assert_eq!(self.word(), "a");
                self.punct(')');
                self.punct('-');
                self.punct('[');
                assert_eq!(self.word(), "r");
                self.punct(':');
                let rel = self.word();
                self.punct(']');
                self.punct('-');
                self.punct('>');
                self.punct('(');
                assert_eq!(self.word(), "b");
                self.punct(')');
                let mut props = Props::new();
                if self.peek() == Some(&Tok::Word("SET".into())) {
                    self.pos += 1;
                    loop {
                        assert_eq!(self.word(), "r");
                        self.punct('.');
                        let k = self.word();
                        self.punct('=');
                        props.insert(k, self.value());
                        if self.peek() != Some(&Tok::Punct(',')) {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                Stmt::Edge {
                    match_label,
                    source,
                    target,
                    rel,
                    props,
                }
            }
            other => panic!("unexpected statement starting with {other}"),
        }
    }
}

/// Every statement of the script; each must end with `;`.
fn parse_cypher(script: &str) -> Vec<Stmt> {
    let mut p = Parser {
        toks: cypher_tokens(script),
        pos: 0,
    };
    let mut out = Vec::new();
    while p.peek().is_some() {
        out.push(p.statement());
        p.punct(';');
    }
    out
}

/// The labels the script must give a node kind (beside `CorrelatorEntity`): Cartography's
/// where it models the same resource (current label, then its compatibility alias).
fn expected_labels(kind: &str) -> &'static [&'static str] {
    match kind {
        "instance" => &["AWSEC2Instance", "EC2Instance"],
        "auto_scaling_group" => &["AWSAutoScalingGroup", "AutoScalingGroup"],
        "launch_template" => &["AWSLaunchTemplate", "LaunchTemplate"],
        "cloudformation_stack" => &["AWSCloudFormationStack", "CloudFormationStack"],
        "instance_profile" => &["AWSInstanceProfile"],
        "iam_role" => &["AWSRole"],
        "ami" => &["AWSEC2Image", "EC2Image"],
        "vpc" => &["AWSVpc"],
        "subnet" => &["AWSEC2Subnet", "EC2Subnet"],
        "access_key" => &["AWSAccountAccessKey", "AccountAccessKey"],
        "account" => &["AWSAccount"],
        "ip" => &["Ip"],
        "principal" => &["CorrelatorPrincipal"],
        "domain" => &["CorrelatorDomain"],
        "signal" => &["CorrelatorSignal"],
        "instance_group" => &["CorrelatorInstanceGroup"],
        other => panic!("no expected labels for kind {other}"),
    }
}

/// The script's nodes and edges, checking the statement shapes: the constraint first, then
/// one `MERGE` per node on the common label, then one per edge.
fn cypher_elements(script: &str) -> Elements {
    let stmts = parse_cypher(script);
    assert_eq!(
        stmts.first(),
        Some(&Stmt::Constraint {
            label: "CorrelatorEntity".into(),
            property: "id".into()
        }),
        "the uniqueness constraint comes first"
    );
    let mut el = Elements::default();
    let mut seen_edge = false;
    for s in &stmts[1..] {
        match s {
            Stmt::Constraint { .. } => panic!("a second constraint"),
            Stmt::Node {
                merge_label,
                id,
                labels,
                props,
            } => {
                assert!(!seen_edge, "node {id} after an edge");
                assert_eq!(merge_label, "CorrelatorEntity", "MERGE of {id}");
                let kind = props["kind"].as_str().unwrap();
                assert_eq!(labels, expected_labels(kind), "labels of {id}");
                assert!(!props.contains_key("id"), "id is the MERGE key");
                let mut props = props.clone();
                props.insert("id".into(), Value::String(id.clone()));
                el.add_node(props, "cypher");
            }
            Stmt::Edge {
                match_label,
                source,
                target,
                rel,
                props,
            } => {
                seen_edge = true;
                assert_eq!(match_label, "CorrelatorEntity");
                let kind = props["kind"].as_str().expect("r.kind");
                assert_eq!(rel, &kind.to_ascii_uppercase(), "relationship type");
                el.add_edge(source, target, props.clone(), "cypher");
            }
        }
    }
    el
}

/// A graph database as far as the script's statements go: nodes by `id` with their labels
/// and properties, relationships by (source, type, target) with their properties.
#[derive(Clone, Debug, Default, PartialEq)]
struct Db {
    constraints: BTreeSet<(String, String)>,
    nodes: BTreeMap<String, (BTreeSet<String>, Props)>,
    rels: BTreeMap<(String, String, String), Props>,
}

impl Db {
    fn run(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            match s {
                Stmt::Constraint { label, property } => {
                    self.constraints.insert((label.clone(), property.clone()));
                }
                Stmt::Node {
                    merge_label,
                    id,
                    labels,
                    props,
                } => {
                    assert!(
                        self.constraints
                            .contains(&(merge_label.clone(), "id".to_string())),
                        "MERGE on {merge_label}.id before its constraint"
                    );
                    let (ls, ps) = self.nodes.entry(id.clone()).or_insert_with(|| {
                        (
                            BTreeSet::from([merge_label.clone()]),
                            Props::from([("id".to_string(), Value::String(id.clone()))]),
                        )
                    });
                    assert!(ls.contains(merge_label));
                    ls.extend(labels.iter().cloned());
                    ps.extend(props.clone());
                }
                Stmt::Edge {
                    source,
                    target,
                    rel,
                    props,
                    ..
                } => {
                    // MATCH finds nothing when an end is missing: the edge would be lost.
                    assert!(self.nodes.contains_key(source), "no node {source}");
                    assert!(self.nodes.contains_key(target), "no node {target}");
                    self.rels
                        .entry((source.clone(), rel.clone(), target.clone()))
                        .or_default()
                        .extend(props.clone());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A reader of the DOT the export writes (one statement per line).

#[derive(Clone, Debug, PartialEq)]
enum DotTok {
    Quoted(String),
    Bare(String),
    Punct(char),
    Arrow,
}

fn dot_tokens(line: &str) -> Vec<DotTok> {
    let cs: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while cs[i] != '"' {
                if cs[i] == '\\' {
                    i += 1;
                    match cs[i] {
                        'n' => s.push('\n'),
                        '"' => s.push('"'),
                        '\\' => s.push('\\'),
                        other => {
                            s.push('\\');
                            s.push(other);
                        }
                    }
                } else {
                    s.push(cs[i]);
                }
                i += 1;
            }
            i += 1;
            out.push(DotTok::Quoted(s));
        } else if c == '-' && cs.get(i + 1) == Some(&'>') {
            out.push(DotTok::Arrow);
            i += 2;
        } else if c.is_alphanumeric() || c == '_' || c == '.' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                i += 1;
            }
            out.push(DotTok::Bare(cs[start..i].iter().collect()));
        } else {
            out.push(DotTok::Punct(c));
            i += 1;
        }
    }
    out
}

/// `[k=v, …];` from token `i` on.
fn dot_attrs(toks: &[DotTok]) -> BTreeMap<String, String> {
    assert_eq!(toks.first(), Some(&DotTok::Punct('[')), "{toks:?}");
    assert_eq!(
        &toks[toks.len() - 2..],
        &[DotTok::Punct(']'), DotTok::Punct(';')],
        "{toks:?}"
    );
    let mut m = BTreeMap::new();
    for kv in toks[1..toks.len() - 2].split(|t| *t == DotTok::Punct(',')) {
        let (k, v) = match kv {
            [
                DotTok::Bare(k),
                DotTok::Punct('='),
                DotTok::Quoted(v) | DotTok::Bare(v),
            ] => (k.clone(), v.clone()),
            other => panic!("attribute {other:?}"),
        };
        assert!(m.insert(k.clone(), v).is_none(), "{k} twice");
    }
    m
}

/// The DOT's nodes and edges, in the JSON's terms: the node `label` attribute is
/// `kind\nlabel`, `shape` is DOT's own, and every value is text.
fn dot_elements(dot: &str) -> Elements {
    let mut el = Elements::default();
    for line in dot.lines() {
        let toks = dot_tokens(line);
        match toks.as_slice() {
            [
                DotTok::Quoted(s),
                DotTok::Arrow,
                DotTok::Quoted(t),
                rest @ ..,
            ] => {
                let mut attrs = dot_attrs(rest);
                assert_eq!(attrs.remove("label"), attrs.get("kind").cloned());
                let props = attrs.into_iter().map(|(k, v)| (k, Value::String(v)));
                el.add_edge(s, t, props.collect(), "dot");
            }
            [DotTok::Quoted(id), rest @ ..] => {
                let mut attrs = dot_attrs(rest);
                let composite = attrs.remove("label").expect("label");
                let (kind, label) = composite.split_once('\n').expect("kind\\nlabel");
                assert_eq!(attrs.get("kind").map(String::as_str), Some(kind));
                attrs.remove("shape").expect("shape");
                attrs.insert("label".into(), label.to_string());
                attrs.insert("id".into(), id.clone());
                let props = attrs.into_iter().map(|(k, v)| (k, Value::String(v)));
                el.add_node(props.collect(), "dot");
            }
            _ => {}
        }
    }
    el
}

/// The JSON's elements with every value as text (what DOT carries).
fn as_text(el: &Elements) -> Elements {
    let t = |p: &Props| -> Props {
        p.iter()
            .map(|(k, v)| (k.clone(), Value::String(text(v))))
            .collect()
    };
    Elements {
        nodes: el.nodes.iter().map(|(k, p)| (k.clone(), t(p))).collect(),
        edges: el.edges.iter().map(|(k, p)| (k.clone(), t(p))).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// The checks, per format, against the JSON export.

fn check_graphml(g: &dyn Exported, want: &Elements, dir: &Path) -> Value {
    let path = dir.join("graph.graphml");
    std::fs::write(&path, g.export(Format::Graphml)).unwrap();
    let report = check_graphml_structure(&path);
    assert_eq!(report["nodes"], want.nodes.len());
    assert_eq!(report["edges"], want.edges.len());
    assert_same("GraphML (networkx)", &graphml_by_networkx(&path), want);
    report
}

fn check_cytoscape(g: &dyn Exported, want: &Elements, dir: &Path) {
    let path = dir.join("graph.json");
    std::fs::write(&path, g.export(Format::Json)).unwrap();
    assert_same(
        "JSON (networkx cytoscape_graph)",
        &json_by_networkx(&path),
        want,
    );
}

fn check_cypher(g: &dyn Exported, want: &Elements) {
    let script = g.export(Format::Cypher);
    assert!(
        script
            .lines()
            .all(|l| l.starts_with("//") || l.ends_with(';')),
        "one statement per line"
    );
    // A relationship is known by its ends and type: the export's positional edge id (`e0`…)
    // is not stored, as it would name another edge in the next export merged into the same
    // database.
    let mut want = Elements {
        nodes: want.nodes.clone(),
        edges: want.edges.clone(),
    };
    for props in want.edges.values_mut() {
        assert!(props.remove("id").is_some());
    }
    assert_same("Cypher", &cypher_elements(&script), &want);
}

fn check_dot(g: &dyn Exported, want: &Elements) {
    let dot = g.export(Format::Dot);
    assert_same("DOT", &dot_elements(&dot), &as_text(want));
    crate::common::graphviz_accepts(&dot);
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn graphml_loads_in_networkx_with_the_nodes_edges_and_typed_properties_of_the_json() {
    let g = scenario();
    let want = from_json(&export(&g, Format::Json));
    assert_eq!((want.nodes.len(), want.edges.len()), (91, 209));
    let dir = tempfile::tempdir().unwrap();
    check_graphml(&g, &want, dir.path());
    // The typed properties, as the JSON has them (and so GraphML, compared above).
    let node = |id: &str| &want.nodes[id];
    assert_eq!(
        node("instance:i-0aaaaaaaaaaaaaaa1")["vcpus"],
        Value::from(2)
    );
    assert_eq!(
        node("instance_group:111122223333/auto_scaling_group/us-east-1/web-asg")["members"],
        Value::from(3)
    );
    let bitcoin = want
        .nodes
        .values()
        .find(|p| {
            p["kind"] == "signal" && p["signal_kind"] == "CryptoCurrency:EC2/BitcoinTool.B!DNS"
        })
        .expect("the BitcoinTool signal");
    assert_eq!(bitcoin["severity"], Value::from(8.0));
    assert_eq!(bitcoin["finding"], Value::Bool(true));
    for (name, t) in [
        ("vcpus", "int"),
        ("members", "int"),
        ("severity", "float"),
        ("finding", "bool"),
        ("region", "str"),
    ] {
        let types: BTreeSet<&str> = want
            .nodes
            .values()
            .filter_map(|p| p.get(name))
            .map(py_type)
            .collect();
        assert_eq!(types, BTreeSet::from([t]), "{name}");
    }
}

#[test]
fn graphml_is_valid_graphml_with_typed_keys_and_gremlin_labels() {
    let g = scenario();
    let text = export(&g, Format::Graphml);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\""));
    assert!(text.contains("<graph id=\"entities\" edgedefault=\"directed\">"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.graphml");
    std::fs::write(&path, &text).unwrap();
    let report = check_graphml_structure(&path);
    let keys = report["keys"].as_object().unwrap();
    let key = |id: &str| {
        let k = &keys[id];
        (
            k["for"].as_str().unwrap(),
            k["name"].as_str().unwrap(),
            k["type"].as_str().unwrap(),
        )
    };
    assert_eq!(key("vcpus"), ("node", "vcpus", "int"));
    assert_eq!(key("members"), ("node", "members", "int"));
    assert_eq!(key("severity"), ("node", "severity", "double"));
    assert_eq!(key("finding"), ("node", "finding", "boolean"));
    assert_eq!(key("region"), ("node", "region", "string"));
    assert_eq!(key("id"), ("node", "id", "string"));
    assert_eq!(key("labelV"), ("node", "labelV", "string"));
    assert_eq!(key("labelE"), ("edge", "labelE", "string"));
    assert_eq!(key("edge_kind"), ("edge", "kind", "string"));
    // Ids with `/` are written as NMTOKENs; plain ones stay as they are.
    assert!(text.contains("<node id=\"instance:i-0aaaaaaaaaaaaaaa1\">"));
    assert!(text.contains(
        "<node id=\"instance_group:111122223333_x002F_auto_scaling_group_x002F_us-east-1_x002F_web-asg\">"
    ));
    assert!(text.contains("<data key=\"labelV\">instance</data>"));
    assert!(text.contains("<data key=\"labelE\">launched_by</data>"));
}

#[test]
fn json_loads_with_the_networkx_cytoscape_reader() {
    let g = scenario();
    let text = export(&g, Format::Json);
    let want = from_json(&text);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["directed"], true);
    assert_eq!(doc["multigraph"], false);
    assert_eq!(doc["data"], Value::Object(Map::new()));
    let dir = tempfile::tempdir().unwrap();
    check_cytoscape(&g, &want, dir.path());
}

#[test]
fn cypher_script_has_every_node_and_edge_of_the_json_exactly_once() {
    let g = scenario();
    let want = from_json(&export(&g, Format::Json));
    check_cypher(&g, &want);
    let script = export(&g, Format::Cypher);
    assert!(script.contains(
        "MERGE (n:CorrelatorEntity {id: 'instance:i-0aaaaaaaaaaaaaaa1'}) SET n:AWSEC2Instance:EC2Instance, n += {"
    ));
    assert!(script.contains(
        "MATCH (a:CorrelatorEntity {id: 'instance:i-0bbbbbbbbbbbbbbb1'}) MATCH (b:CorrelatorEntity {id: 'principal:AROAEXAMPLEROLEID0001:i-0aaaaaaaaaaaaaaa1'}) MERGE (a)-[r:LAUNCHED_BY]->(b) SET r.kind = 'launched_by';"
    ));
    // Every kind of the scenario has its labels; the Cartography ones where they overlap.
    let kinds: BTreeSet<&str> = want
        .nodes
        .values()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    for k in [
        "instance",
        "auto_scaling_group",
        "launch_template",
        "iam_role",
        "account",
        "signal",
    ] {
        assert!(kinds.contains(k), "{k}");
    }
    let rels: BTreeSet<String> = parse_cypher(&script)
        .into_iter()
        .filter_map(|s| match s {
            Stmt::Edge { rel, .. } => Some(rel),
            _ => None,
        })
        .collect();
    for r in [
        "MEMBER_OF",
        "ACTED_AS",
        "LAUNCHED_BY",
        "OBSERVED_ON",
        "IN_GROUP",
    ] {
        assert!(rels.contains(r), "{r} in {rels:?}");
    }
}

#[test]
fn cypher_script_run_twice_creates_nothing_new() {
    let g = scenario();
    let want = from_json(&export(&g, Format::Json));
    let stmts = parse_cypher(&export(&g, Format::Cypher));
    let mut db = Db::default();
    db.run(&stmts);
    assert_eq!(db.nodes.len(), want.nodes.len());
    assert_eq!(db.rels.len(), want.edges.len());
    let once = db.clone();
    db.run(&stmts);
    assert_eq!(db, once, "a second run changed the graph");
    // Only MERGEs create (a CREATE would be a parse error above but the constraint's).
    let script = export(&g, Format::Cypher);
    for l in script.lines().filter(|l| !l.starts_with("//")) {
        assert!(
            l.starts_with("MERGE ")
                || l.starts_with("MATCH ")
                || l.starts_with("CREATE CONSTRAINT correlator_entity_id IF NOT EXISTS "),
            "{l}"
        );
    }
}

#[test]
fn dot_has_the_nodes_edges_and_properties_of_the_json_and_passes_graphviz() {
    let g = scenario();
    let want = from_json(&export(&g, Format::Json));
    check_dot(&g, &want);
}

#[test]
fn values_with_quotes_backslashes_markup_and_newlines_survive_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let input = weird_input(dir.path());
    let g = build(&[input]);
    let json = export(&g, Format::Json);
    let want = from_json(&json);
    // The value is in ids, labels and properties of several kinds.
    let asg = format!("auto_scaling_group:111122223333/us-east-1/{WEIRD}");
    assert_eq!(want.nodes[&asg]["label"], WEIRD);
    let instance = &want.nodes["instance:i-0eeeeeeeeeeeeeee1"];
    for p in ["instance_type", "launch_template_version"] {
        assert_eq!(instance[p], WEIRD, "{p}");
    }
    assert_eq!(instance["group"], format!("auto_scaling_group/{WEIRD}"));
    assert_eq!(
        want.nodes["principal:AIDAEXAMPLEWEIRD0001"]["arn"],
        format!("arn:aws:iam::111122223333:user/{WEIRD}")
    );
    assert!(
        want.nodes
            .values()
            .any(|p| p.get("error_code") == Some(&Value::from(WEIRD))),
        "error_code"
    );
    assert!(want.edges.contains_key(&(
        "instance:i-0eeeeeeeeeeeeeee1".into(),
        asg,
        "member_of".into()
    )));
    check_graphml(&g, &want, dir.path());
    check_cytoscape(&g, &want, dir.path());
    check_cypher(&g, &want);
    check_dot(&g, &want);
}

#[test]
fn every_format_gives_the_same_bytes_for_the_same_input() {
    let dir = tempfile::tempdir().unwrap();
    let weird = weird_input(dir.path());
    for paths in [main_scenario(), vec![weird]] {
        let (a, b) = (build(&paths), build(&paths));
        for f in [Format::Json, Format::Dot, Format::Graphml, Format::Cypher] {
            let (x, y) = (export(&a, f), export(&b, f));
            assert!(x == y, "{f:?} differs between two runs over {paths:?}");
        }
    }
}

#[test]
fn format_from_the_file_extension() {
    for (name, want) in [
        ("g.json", Some(Format::Json)),
        ("g.dot", Some(Format::Dot)),
        ("g.gv", Some(Format::Dot)),
        ("g.graphml", Some(Format::Graphml)),
        ("G.GraphML", Some(Format::Graphml)),
        ("g.cypher", Some(Format::Cypher)),
        ("g.cql", Some(Format::Cypher)),
        ("g.xml", None),
        ("graph", None),
    ] {
        assert_eq!(Format::from_path(Path::new(name)), want, "{name}");
    }
}

const MAIN: [&str; 3] = ["fixtures/cloudtrail", "fixtures/guardduty", "fixtures/asff"];

#[test]
fn graph_format_option_and_extensions_pick_the_new_formats() {
    let out = correlator()
        .args(["graph", "--format", "graphml"])
        .args(MAIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("<?xml"), "{stdout}");
    assert!(stdout.ends_with("</graphml>\n"));

    let dir = tempfile::tempdir().unwrap();
    for (file, starts) in [
        ("g.cql", "// finding-correlator entity graph"),
        ("g.cypher", "// finding-correlator entity graph"),
        ("g.graphml", "<?xml"),
    ] {
        let path = dir.path().join(file);
        let out = correlator()
            .arg("graph")
            .arg("--output")
            .arg(&path)
            .args(MAIN)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{file}");
        assert!(out.stdout.is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(starts), "{file}: {}", &text[..40]);
    }
}

#[test]
fn correlate_graph_picks_the_format_by_extension_and_names_the_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let asff = dir.path().join("findings.json");
    for (file, starts) in [
        ("graph.graphml", "<?xml"),
        ("graph.cql", "// finding-correlator"),
        ("graph.json", "{\"data\":{}"),
        ("graph.dot", "digraph entities {"),
    ] {
        let path = dir.path().join(file);
        let out = correlator()
            .arg("correlate")
            .arg("--asff")
            .arg(&asff)
            .arg("--graph")
            .arg(&path)
            .args(MAIN)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(starts), "{file}");
    }
    let out = correlator()
        .arg("correlate")
        .arg("--graph")
        .arg(dir.path().join("graph.xml"))
        .args(MAIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(".json, .dot (or .gv), .graphml, .cypher or .cql"),
        "{stderr}"
    );
}

#[test]
fn issue_7_every_format_writes_the_same_sequence_neighbourhood() {
    let rules = std::sync::Arc::new(RuleSet::builtin().unwrap());
    let settings = Config::default().validate().unwrap();
    let run = pipeline::correlate(&main_scenario(), &settings, rules.clone(), true, None);
    let seq = report::pick(&run.sequences, &rules, WEB_ASG_SEQUENCE).expect("the sequence");
    let part = report::neighbourhood(&run.graph, seq);
    let want = from_json(&part.export(Format::Json));
    let whole = from_json(&export(&run.graph, Format::Json));
    assert!(
        want.nodes.len() < whole.nodes.len() && want.edges.len() < whole.edges.len(),
        "a part of the graph: {} of {} nodes",
        want.nodes.len(),
        whole.nodes.len()
    );
    // Every element of the part is the graph's own, properties included.
    for (id, props) in &want.nodes {
        assert_eq!(whole.nodes.get(id), Some(props), "node {id}");
    }
    for (key, props) in &want.edges {
        assert_eq!(
            whole.edges.get(key).map(|p| &p["kind"]),
            Some(&props["kind"]),
            "edge {key:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    check_graphml(&part, &want, dir.path());
    check_cytoscape(&part, &want, dir.path());
    check_cypher(&part, &want);
    check_dot(&part, &want);

    // The CLI writes the same bytes, from `graph --sequence` and from `correlate --graph`.
    for (format, ext) in [
        (Format::Json, "json"),
        (Format::Dot, "dot"),
        (Format::Graphml, "graphml"),
        (Format::Cypher, "cypher"),
    ] {
        let out = correlator()
            .args(["graph", "--sequence", WEB_ASG_SEQUENCE, "--format", ext])
            .args(MAIN)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{ext}");
        assert!(
            out.stdout == part.export(format).as_bytes(),
            "graph --sequence --format {ext} differs from the library's neighbourhood"
        );
        let path = dir.path().join(format!("part.{ext}"));
        let out = correlator()
            .args(["correlate", "--sequence", WEB_ASG_SEQUENCE, "--graph"])
            .arg(&path)
            .args(MAIN)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::read(&path).unwrap() == part.export(format).as_bytes(),
            "correlate --graph part.{ext} --sequence differs from the library's neighbourhood"
        );
    }
}

/// `correlate --graph FILE` writes its graph while the rules are matched: the graph
/// `correlator graph` writes, byte for byte, and the findings are those of a run without it.
#[test]
fn correlate_writes_the_graph_of_the_graph_command() {
    let dir = tempfile::tempdir().unwrap();
    let want = correlator().arg("graph").args(MAIN).output().unwrap();
    assert_eq!(want.status.code(), Some(0));
    assert!(want.stdout.len() > 1000, "{} bytes", want.stdout.len());
    let findings = |graph: Option<&std::path::Path>| {
        let asff = dir.path().join("findings.json");
        let mut cmd = correlator();
        cmd.arg("correlate").arg("--asff").arg(&asff);
        if let Some(g) = graph {
            cmd.arg("--graph").arg(g);
        }
        let out = cmd.args(MAIN).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(&asff).unwrap()
    };
    let file = dir.path().join("graph.json");
    let with_graph = findings(Some(&file));
    assert!(
        std::fs::read(&file).unwrap() == want.stdout,
        "the graph file differs from the graph command's output"
    );
    assert!(
        with_graph == findings(None),
        "findings differ with and without --graph"
    );
}

/// Node ids of an export, in the order written, read by each format's syntax.
fn node_ids(text: &str, format: Format) -> Vec<String> {
    match format {
        Format::Json => {
            let doc: Value = serde_json::from_str(text).unwrap();
            doc["elements"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["data"]["id"].as_str().unwrap().to_string())
                .collect()
        }
        // `"id" [label=…];` (edges have `->`).
        Format::Dot => text
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('"') && !l.contains("\" -> \""))
            .map(|l| l.split("\" [").next().unwrap().to_string())
            .collect(),
        Format::Graphml => text
            .split("<node id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect(),
        Format::Cypher => text
            .lines()
            .filter(|l| l.starts_with("MERGE (n:"))
            .map(|l| {
                l.split("{id: ")
                    .nth(1)
                    .unwrap()
                    .split("})")
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect(),
    }
}

#[test]
fn issue_13_a_group_name_in_two_regions_is_two_group_nodes_in_every_format() {
    // The same Auto Scaling group name in us-east-1 and eu-west-1 of one account: two groups
    // (their keys hold the region), so two nodes with two ids.
    let src = repo().join("fixtures/scenarios/compromised-instance-group/positive");
    let text = std::fs::read_to_string(src.join("guardduty-get-findings.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("us.json"), &text).unwrap();
    let eu = text
        .replace("us-east-1", "eu-west-1")
        .replace("i-0a15ce", "i-0e15ce");
    std::fs::write(dir.path().join("eu.json"), eu).unwrap();
    let g = build(&[dir.path().to_path_buf()]);
    let json = export(&g, Format::Json);
    let groups: Vec<String> = node_ids(&json, Format::Json)
        .into_iter()
        .filter(|id| id.starts_with("instance_group:"))
        .collect();
    assert_eq!(
        groups,
        [
            "instance_group:111122223333/auto_scaling_group/eu-west-1/shop-asg",
            "instance_group:111122223333/auto_scaling_group/us-east-1/shop-asg",
        ]
    );
    let nodes = node_ids(&json, Format::Json).len();
    for format in [Format::Json, Format::Dot, Format::Graphml, Format::Cypher] {
        let ids = node_ids(&export(&g, format), format);
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), nodes, "{format:?}: every node once");
        assert_eq!(distinct.len(), ids.len(), "{format:?}: a node id twice");
    }
    // Each group holds its region's instances.
    let el = from_json(&json);
    for (region, prefix) in [("us-east-1", "i-0a15ce"), ("eu-west-1", "i-0e15ce")] {
        let group = format!("instance_group:111122223333/auto_scaling_group/{region}/shop-asg");
        let members: Vec<&String> = el
            .edges
            .keys()
            .filter(|(_, t, k)| *t == group && k == "in_group")
            .map(|(s, _, _)| s)
            .collect();
        assert!(!members.is_empty(), "{group} has members");
        assert!(
            members
                .iter()
                .all(|m| m.starts_with(&format!("instance:{prefix}"))),
            "{group}: {members:?}"
        );
    }
}
