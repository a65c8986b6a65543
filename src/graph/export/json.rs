//! Cytoscape.js elements JSON:
//! `{"data":{},"directed":true,"multigraph":false,"elements":{"nodes":[{"data":{…}}],
//! "edges":[{"data":{…}}]}}`, one element per line.
//!
//! Cytoscape.js reads `elements` (and `data`); `directed`, `multigraph` and each node's
//! `value` (its id again) are what networkx's `cytoscape_graph` needs. The graph never has two
//! edges between the same two nodes (each pair of node kinds has one edge kind), so it is not
//! a multigraph.

use std::io::{self, Write};

use super::model::{ExportGraph, Value};

// Written by hand rather than through serde: the export is on the critical path of a run
// (it overlaps matching), and serde_json's per-element serialisation and per-byte escaping
// cost three times as much. The bytes are the same as serde_json's.

/// Appends `s` as a JSON string: as it is when nothing in it needs escaping (ids, labels and
/// properties nearly always), else escaped by serde_json.
fn string(buf: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // No early exit, so the test runs over whole vectors.
    let escape = s
        .bytes()
        .fold(false, |e, b| e | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if escape {
        serde_json::to_writer(&mut *buf, s)?;
    } else {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    }
    Ok(())
}

/// Appends `,"name":` (or `"name":` first).
fn key(buf: &mut Vec<u8>, name: &str, first: bool) -> io::Result<()> {
    if !first {
        buf.push(b',');
    }
    string(buf, name)?;
    buf.push(b':');
    Ok(())
}

/// Appends `n` in decimal.
fn decimal(buf: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

fn value(buf: &mut Vec<u8>, v: &Value<'_>) -> io::Result<()> {
    match *v {
        Value::Str(s) => string(buf, s),
        Value::Int(i) => write!(buf, "{i}"),
        Value::Double(d) => Ok(serde_json::to_writer(&mut *buf, &d)?),
        Value::Bool(b) => {
            buf.extend_from_slice(if b { b"true" } else { b"false" });
            Ok(())
        }
    }
}

pub(super) fn write(g: &ExportGraph<'_>, out: &mut dyn Write) -> io::Result<()> {
    // Elements are written into a local buffer and handed on in large blocks (through
    // `dyn Write` each small write would be a virtual call).
    const BLOCK: usize = 1 << 16;
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + 4096);
    buf.extend_from_slice(
        b"{\"data\":{},\"directed\":true,\"multigraph\":false,\"elements\":{\"nodes\":[\n",
    );
    for (i, n) in g.nodes.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b",\n");
        }
        buf.extend_from_slice(b"{\"data\":{");
        key(&mut buf, "id", true)?;
        string(&mut buf, &n.id)?;
        key(&mut buf, "value", false)?;
        string(&mut buf, &n.id)?;
        key(&mut buf, "label", false)?;
        string(&mut buf, &n.label)?;
        key(&mut buf, "kind", false)?;
        string(&mut buf, n.kind)?;
        for (name, v) in g.props(n) {
            key(&mut buf, name, false)?;
            value(&mut buf, &v)?;
        }
        buf.extend_from_slice(b"}}");
        if buf.len() >= BLOCK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"\n],\"edges\":[\n");
    for (i, (s, t, k)) in g.edges.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b",\n");
        }
        // The id is `ExportGraph::edge_id(i)`, written without formatting machinery.
        buf.extend_from_slice(b"{\"data\":{\"id\":\"e");
        decimal(&mut buf, i);
        buf.extend_from_slice(b"\",\"source\":");
        string(&mut buf, s)?;
        key(&mut buf, "target", false)?;
        string(&mut buf, t)?;
        key(&mut buf, "kind", false)?;
        string(&mut buf, k.as_str())?;
        buf.extend_from_slice(b"}}");
        if buf.len() >= BLOCK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"\n]}}\n");
    out.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings come out as serde_json writes them, escaped or not.
    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "instance:i-0abc",
            "a \"quoted\" name",
            "back\\slash",
            "line\nbreak\ttab\u{1}",
            "ünïcödé ✓ \u{7f}",
        ] {
            let mut buf = Vec::new();
            string(&mut buf, s).unwrap();
            assert_eq!(buf, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        for (v, want) in [
            (Value::Int(-3), "-3"),
            (Value::Double(8.0), "8.0"),
            (Value::Double(5.5), "5.5"),
            (Value::Bool(true), "true"),
            (Value::Str("x\"y"), "\"x\\\"y\""),
        ] {
            let mut buf = Vec::new();
            value(&mut buf, &v).unwrap();
            assert_eq!(String::from_utf8(buf).unwrap(), want, "{v:?}");
            assert_eq!(want, serde_json::to_string(&v).unwrap(), "{v:?}");
        }
        for n in [0, 7, 10, 99, 1234567, usize::MAX] {
            let mut buf = Vec::new();
            decimal(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
    }
}
