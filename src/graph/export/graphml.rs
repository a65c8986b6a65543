//! GraphML (`http://graphml.graphdrawing.org/xmlns`), as Gephi, yEd, networkx and TinkerPop's
//! GraphML reader (and with it Amazon Neptune's `graphml2csv`) read it.
//!
//! - One `<key>` per property with its `attr.type` (`string`, `int`, `double`, `boolean`);
//!   node keys are named after their property, the edge `kind` key is `edge_kind` (key ids are
//!   unique across the document).
//! - Every node has a `labelV` and every edge a `labelE`: the TinkerPop convention for vertex
//!   and edge labels (the entity kind, the edge kind).
//! - Node ids: the schema types them `xs:NMTOKEN`, which ARNs and group ids (`/`) are not. The
//!   id attribute is the node id with every character other than ASCII letters, digits, `.`,
//!   `-`, `:` and `_` written `_xHHHH_` (hex code point; a `_` followed by `x` too), the
//!   XmlConvert convention; `instance:i-0abc…` stays as it is. The id itself is the `id`
//!   property. Edge ids are `e0`, `e1`… as in the JSON.
//! - Values are XML-escaped; a carriage return is written `&#13;` so that parsers keep it;
//!   characters XML 1.0 cannot carry (other C0 controls, U+FFFE, U+FFFF) become U+FFFD.
//! - Written element by element, sorted as the JSON is.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::model::{ExportGraph, PropType};

const NS: &str = "http://graphml.graphdrawing.org/xmlns";
const SCHEMA: &str = "http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd";

/// The GraphML node id of a node id (see the module documentation).
fn encode_node_id(id: &str) -> String {
    let mut o = String::with_capacity(id.len());
    let mut chars = id.chars().peekable();
    while let Some(c) = chars.next() {
        let plain = c.is_ascii_alphanumeric()
            || matches!(c, '.' | '-' | ':')
            || (c == '_' && chars.peek() != Some(&'x'));
        if plain {
            o.push(c);
        } else {
            let _ = write!(o, "_x{:04X}_", c as u32);
        }
    }
    if o.is_empty() {
        // An NMTOKEN has at least one character; no node id is empty, but stay valid.
        o.push_str("_x_");
    }
    o
}

/// The node id an [`encode_node_id`] result stands for.
#[cfg(test)]
fn decode_node_id(s: &str) -> Option<String> {
    let mut o = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("_x") {
        o.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('_')?;
        if end > 0 {
            o.push(char::from_u32(
                u32::from_str_radix(&after[..end], 16).ok()?,
            )?);
        }
        rest = &after[end + 1..];
    }
    o.push_str(rest);
    Some(o)
}

fn valid_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Writes `s` escaped for element content (`attr` false) or a double-quoted attribute value.
fn escape(out: &mut dyn Write, s: &str, attr: bool) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\r' => "&#13;",
            '"' if attr => "&quot;",
            '\'' if attr => "&apos;",
            '\n' if attr => "&#10;",
            '\t' if attr => "&#9;",
            c if !valid_xml_char(c) => "\u{FFFD}",
            _ => continue,
        };
        out.write_all(&s.as_bytes()[start..i])?;
        out.write_all(rep.as_bytes())?;
        start = i + c.len_utf8();
    }
    out.write_all(&s.as_bytes()[start..])
}

fn data(out: &mut dyn Write, key: &str, value: &str) -> io::Result<()> {
    write!(out, "      <data key=\"{key}\">")?;
    escape(out, value, false)?;
    out.write_all(b"</data>\n")
}

fn key(out: &mut dyn Write, id: &str, domain: &str, name: &str, t: PropType) -> io::Result<()> {
    writeln!(
        out,
        "  <key id=\"{id}\" for=\"{domain}\" attr.name=\"{name}\" attr.type=\"{}\"/>",
        t.as_str()
    )
}

/// Whether a property name can be a key id and `attr.name` as it is (an NMTOKEN that needs no
/// escaping) and is not one of the keys this format adds. Property names are snake_case;
/// anything else would be a bug upstream.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !matches!(name, "labelV" | "labelE" | "edge_kind")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(super) fn write(g: &ExportGraph<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<graphml xmlns=\"{NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"{NS} {SCHEMA}\">"
    )?;
    // Node keys: the fixed fields, the properties, then labelV (not first: graphml2csv takes
    // the type of the key before it for labelV's column).
    for name in ["id", "label", "kind"] {
        key(out, name, "node", name, PropType::String)?;
    }
    let props: Vec<(&str, PropType)> = g
        .node_props
        .iter()
        .filter(|(name, _)| plain_name(name))
        .map(|(&name, &t)| (name, t))
        .collect();
    for &(name, t) in &props {
        key(out, name, "node", name, t)?;
    }
    key(out, "labelV", "node", "labelV", PropType::String)?;
    key(out, "edge_kind", "edge", "kind", PropType::String)?;
    key(out, "labelE", "edge", "labelE", PropType::String)?;
    writeln!(out, "  <graph id=\"entities\" edgedefault=\"directed\">")?;
    for n in &g.nodes {
        writeln!(out, "    <node id=\"{}\">", encode_node_id(&n.id))?;
        data(out, "labelV", n.kind)?;
        data(out, "id", &n.id)?;
        data(out, "label", &n.label)?;
        data(out, "kind", n.kind)?;
        for (name, value) in g.props(n) {
            if plain_name(name) {
                data(out, name, &value.text())?;
            }
        }
        writeln!(out, "    </node>")?;
    }
    for (i, (s, t, k)) in g.edges.iter().enumerate() {
        writeln!(
            out,
            "    <edge id=\"{}\" source=\"{}\" target=\"{}\">",
            ExportGraph::edge_id(i),
            encode_node_id(s),
            encode_node_id(t)
        )?;
        data(out, "labelE", k.as_str())?;
        data(out, "edge_kind", k.as_str())?;
        writeln!(out, "    </edge>")?;
    }
    writeln!(out, "  </graph>")?;
    writeln!(out, "</graphml>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_become_nmtokens_and_back() {
        for id in [
            "instance:i-0abc",
            "instance_group:111122223333/ami/ami-0c0",
            "principal:arn:aws:sts::1:assumed-role/r/s",
            "x:a\"b\\c<&>'d\ne f_x_y_xz é 😀",
            "auto_scaling_group:1/us-east-1/web_x0041_",
        ] {
            let enc = encode_node_id(id);
            assert!(
                enc.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')),
                "{enc}"
            );
            assert_eq!(decode_node_id(&enc).as_deref(), Some(id), "{enc}");
        }
        assert_eq!(encode_node_id("instance:i-0abc"), "instance:i-0abc");
        assert_eq!(encode_node_id("a/b"), "a_x002F_b");
    }

    #[test]
    fn escaping_text_and_attributes() {
        let mut o = Vec::new();
        escape(&mut o, "a\"b\\c<&>'d\ne\rf\u{1}g", false).unwrap();
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "a\"b\\c&lt;&amp;&gt;'d\ne&#13;f\u{FFFD}g"
        );
        let mut o = Vec::new();
        escape(&mut o, "a\"'\n\t", true).unwrap();
        assert_eq!(String::from_utf8(o).unwrap(), "a&quot;&apos;&#10;&#9;");
    }
}
