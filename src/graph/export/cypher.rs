//! A Neo4j Cypher script (`cypher-shell -f graph.cypher`): one statement per line, each ending
//! in `;`, that can be run again and again — a second run creates nothing.
//!
//! ```text
//! CREATE CONSTRAINT correlator_entity_id IF NOT EXISTS FOR (n:CorrelatorEntity) REQUIRE n.id IS UNIQUE;
//! MERGE (n:CorrelatorEntity {id: 'instance:i-0abc'}) SET n:AWSEC2Instance:EC2Instance, n += {label: 'i-0abc', kind: 'instance', vcpus: 2};
//! MATCH (a:CorrelatorEntity {id: 'instance:i-0abc'}) MATCH (b:CorrelatorEntity {id: '…'}) MERGE (a)-[r:MEMBER_OF]->(b) SET r.kind = 'member_of';
//! ```
//!
//! Every node has the common label `CorrelatorEntity`, whose `id` is unique (the constraint
//! comes first, so that each `MERGE` and `MATCH` is an index lookup), and the labels of its
//! kind: Cartography's where Cartography models the same AWS resource — its current
//! `AWS`-prefixed label and, where it has one, the older label it still sets for
//! compatibility (`AWSEC2Instance` and `EC2Instance`) — and `Correlator…` for what only this
//! tool knows (principals as role sessions, domains, signals, instance groups). Relationship
//! types are the edge kinds in upper snake case. Strings are single-quoted with `\` escapes;
//! integers, doubles and booleans are Cypher literals.

use std::borrow::Cow;
use std::io::{self, Write};

use super::model::{ExportGraph, Value};
use crate::graph::EdgeKind;

/// The label every node of the script has.
pub const COMMON_LABEL: &str = "CorrelatorEntity";

/// The labels of a node kind, besides [`COMMON_LABEL`].
pub fn labels(kind: &str) -> Vec<Cow<'static, str>> {
    let known: &[&'static str] = match kind {
        // Cartography's labels (cartography/models/aws/…): the primary one, then its
        // compatibility alias.
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
        // This tool's own.
        "principal" => &["CorrelatorPrincipal"],
        "domain" => &["CorrelatorDomain"],
        "signal" => &["CorrelatorSignal"],
        "instance_group" => &["CorrelatorInstanceGroup"],
        other => {
            let mut l = String::from("Correlator");
            for part in other.split(|c: char| !c.is_ascii_alphanumeric()) {
                let mut cs = part.chars();
                if let Some(first) = cs.next() {
                    l.push(first.to_ascii_uppercase());
                    l.extend(cs);
                }
            }
            return vec![Cow::Owned(l)];
        }
    };
    known.iter().map(|&l| Cow::Borrowed(l)).collect()
}

/// The relationship type of an edge kind: `member_of` → `MEMBER_OF`.
pub fn relationship_type(kind: EdgeKind) -> String {
    kind.as_str().to_ascii_uppercase()
}

/// A Cypher string literal.
fn string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

/// A label, property key or relationship type: as it is when it is a plain identifier, else
/// in backticks.
fn name(s: &str) -> Cow<'_, str> {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("`{}`", s.replace('`', "``")))
    }
}

fn literal(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => string(s),
        other => other.text().into_owned(),
    }
}

pub(super) fn write(g: &ExportGraph<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "// finding-correlator entity graph: {} nodes, {} edges. Idempotent: run it again and \
         nothing new is created.",
        g.nodes.len(),
        g.edges.len()
    )?;
    writeln!(
        out,
        "CREATE CONSTRAINT correlator_entity_id IF NOT EXISTS FOR (n:{COMMON_LABEL}) REQUIRE n.id IS UNIQUE;"
    )?;
    for n in &g.nodes {
        let labels: Vec<String> = labels(n.kind)
            .iter()
            .map(|l| format!(":{}", name(l)))
            .collect();
        let mut props = vec![
            format!("label: {}", string(&n.label)),
            format!("kind: {}", string(n.kind)),
        ];
        for (k, v) in g.props(n) {
            props.push(format!("{}: {}", name(k), literal(&v)));
        }
        writeln!(
            out,
            "MERGE (n:{COMMON_LABEL} {{id: {}}}) SET n{}, n += {{{}}};",
            string(&n.id),
            labels.concat(),
            props.join(", ")
        )?;
    }
    for (s, t, k) in &g.edges {
        writeln!(
            out,
            "MATCH (a:{COMMON_LABEL} {{id: {}}}) MATCH (b:{COMMON_LABEL} {{id: {}}}) \
             MERGE (a)-[r:{}]->(b) SET r.kind = {};",
            string(s),
            string(t),
            name(&relationship_type(*k)),
            string(k.as_str())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_single_quotes() {
        assert_eq!(string("a'b\\c\"d\ne"), r#"'a\'b\\c"d\ne'"#);
        assert_eq!(string("\u{1}"), r"'\u0001'");
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(name("vcpus"), "vcpus");
        assert_eq!(name("a b"), "`a b`");
        assert_eq!(relationship_type(EdgeKind::LaunchedBy), "LAUNCHED_BY");
        assert_eq!(labels("instance"), ["AWSEC2Instance", "EC2Instance"]);
        assert_eq!(labels("new_kind"), ["CorrelatorNewKind"]);
    }
}
