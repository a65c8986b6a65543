//! The report's two drawings as inline SVG: the neighbourhood graph as [`layout`] placed it,
//! and a strip of when the signals happened.
//!
//! Elements carry what the page's script and its tests need: each entity is one
//! `g.node` with `data-n` (its index), each "+N more" box a `g.more`, each signal tick a
//! `line.tick` with `data-i`; the graph's `svg` says how many entities the neighbourhood has
//! (`data-entities`), how many are drawn and how many are not.

use std::fmt::Write as _;

use super::html::esc;
use super::layout::{Layout, NODE_H};
use crate::matcher::SeqSignal;
use crate::signal::Source;
use crate::time::{Millis, format_rfc3339};

/// The class of a kind (CSS colours it).
pub fn kind_class(kind: &str) -> String {
    format!("k-{}", kind.replace('_', "-"))
}

/// The graph. `prefix` makes the ids of this drawing unique in the page.
pub fn graph(out: &mut String, l: &Layout, prefix: &str) {
    let _ = write!(
        out,
        "<svg class=\"graph\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" \
         role=\"img\" aria-label=\"the entities of the sequence and how they relate\" \
         data-entities=\"{}\" data-drawn=\"{}\" data-hidden=\"{}\">",
        l.entities,
        l.nodes.len(),
        l.hidden,
        w = l.width,
        h = l.height,
    );
    let _ = write!(
        out,
        "<defs><marker id=\"{prefix}-arrow\" viewBox=\"0 0 10 10\" refX=\"8\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0 L10,5 L0,10 z\"></path></marker></defs>"
    );
    for t in &l.titles {
        let _ = write!(
            out,
            "<text class=\"band\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            t.x,
            t.y,
            esc(&t.text)
        );
    }
    for f in &l.frames {
        let _ = write!(
            out,
            "<rect class=\"frame{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             rx=\"10\"></rect>",
            if f.focus { " focus" } else { "" },
            f.x,
            f.y,
            f.w,
            f.h
        );
    }
    out.push_str("<g class=\"edges\">");
    for (i, e) in l.edges.iter().enumerate() {
        let _ = write!(
            out,
            "<path class=\"edge{}\" d=\"{}\" marker-end=\"url(#{prefix}-arrow)\" data-e=\"{i}\" \
             data-from=\"{}\" data-to=\"{}\"><title>{}</title></path>",
            if e.observed { " observed" } else { "" },
            e.path,
            e.from,
            e.to,
            esc(&e.label)
        );
    }
    out.push_str("</g>");
    for (n, p) in l.nodes.iter().enumerate() {
        let mut class = format!("node {}", kind_class(p.kind));
        for (on, c) in [
            (p.header, " header"),
            (p.focus, " focus"),
            (p.named > 0, " named"),
        ] {
            if on {
                class.push_str(c);
            }
        }
        let _ = write!(
            out,
            "<g class=\"{class}\" data-n=\"{n}\" tabindex=\"0\" \
             transform=\"translate({:.1},{:.1})\"><title>{}: {}</title>\
             <rect class=\"box\" width=\"{:.1}\" height=\"{NODE_H}\" rx=\"6\"></rect>\
             <rect class=\"stripe\" width=\"5\" height=\"{NODE_H}\" rx=\"2\"></rect>\
             <text class=\"cap\" x=\"12\" y=\"13\">{}</text>\
             <text class=\"lbl\" x=\"12\" y=\"27.5\">{}</text>",
            p.x,
            p.y,
            esc(&p.kind.replace('_', " ")),
            esc(&p.label),
            p.w,
            esc(&p.caption),
            esc(&p.text),
        );
        if p.named > 0 {
            // A pill as wide as the count.
            let digits = p.named.to_string().len() as f64;
            let bw = 13.0 + 6.5 * digits;
            let _ = write!(
                out,
                "<g class=\"badge\"><title>named by {} signal{} of this sequence</title>\
                 <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"19\" rx=\"9.5\"></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                p.named,
                if p.named == 1 { "" } else { "s" },
                p.w - 6.0 - bw,
                NODE_H / 2.0 - 9.5,
                p.w - 6.0 - bw / 2.0,
                NODE_H / 2.0 + 3.5,
                p.named
            );
        }
        out.push_str("</g>");
    }
    for m in &l.more {
        let _ = write!(
            out,
            "<g class=\"more\" data-count=\"{}\" transform=\"translate({:.1},{:.1})\">\
             <rect width=\"{:.1}\" height=\"{NODE_H}\" rx=\"6\"></rect>\
             <text x=\"12\" y=\"21.5\">{}</text></g>",
            m.count,
            m.x,
            m.y,
            m.w,
            esc(&m.text)
        );
    }
    // Labels last, over the edges they name.
    out.push_str("<g class=\"edge-labels\">");
    for (i, e) in l.edges.iter().enumerate() {
        let Some((x, y)) = e.label_at else {
            continue;
        };
        let _ = write!(
            out,
            "<text class=\"elabel{}\" data-e=\"{i}\" x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
            if e.observed { " observed" } else { "" },
            y + 3.5,
            esc(&e.label)
        );
    }
    out.push_str("</g></svg>");
}

/// When the signals happened: one tick per signal on a time axis (findings tall and coloured
/// by severity, API calls short, weak signals dashed).
pub fn strip(out: &mut String, signals: &[std::sync::Arc<SeqSignal>]) {
    const W: f64 = 1000.0;
    const PAD: f64 = 12.0;
    let (Some(first), Some(last)) = (
        signals.iter().map(|s| s.time).min(),
        signals.iter().map(|s| s.time).max(),
    ) else {
        return;
    };
    let span = (last - first).max(1) as f64;
    let x = |t: Millis| PAD + (t - first) as f64 / span * (W - 2.0 * PAD);
    let _ = write!(
        out,
        "<svg class=\"strip\" viewBox=\"0 0 {W} 48\" role=\"img\" \
         aria-label=\"when the signals happened\">\
         <line class=\"axis\" x1=\"{PAD}\" y1=\"32\" x2=\"{:.1}\" y2=\"32\"></line>",
        W - PAD
    );
    for (i, s) in signals.iter().enumerate() {
        let finding = s.source != Source::CloudTrail;
        let top = if finding { 6.0 } else { 16.0 };
        let _ = write!(
            out,
            "<line class=\"tick {}{}\" data-i=\"{i}\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" \
             y2=\"32\"><title>{} {}</title></line>",
            if finding {
                super::html::severity_class(s.severity)
            } else {
                "call"
            },
            if s.weak { " weak" } else { "" },
            esc(&format_rfc3339(s.time)[11..19]),
            esc(&s.describe()),
            x = x(s.time),
        );
    }
    let _ = write!(
        out,
        "<text class=\"when\" x=\"{PAD}\" y=\"45\">{}</text>\
         <text class=\"when end\" x=\"{:.1}\" y=\"45\">{}</text></svg>",
        esc(&format_rfc3339(first)[..19].replace('T', " ")),
        W - PAD,
        esc(&format_rfc3339(last)[..19].replace('T', " ")),
    );
}
