//! Edge geometry for the report's graph: each relation is a cubic Bézier curve from the
//! side of one box facing the other (an arc on the outer side between boxes of one column),
//! and its label goes where it covers no box and no other label.

use super::layout::{Band, MARGIN_X, NODE_H, Placed, SMALL_CHAR_W};

#[derive(Clone, Copy, Debug)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// A cubic Bézier curve.
pub struct Curve([(f64, f64); 4]);

impl Curve {
    fn at(&self, t: f64) -> (f64, f64) {
        let [p0, p1, p2, p3] = self.0;
        let u = 1.0 - t;
        let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
        (
            a * p0.0 + b * p1.0 + c * p2.0 + d * p3.0,
            a * p0.1 + b * p1.1 + c * p2.1 + d * p3.1,
        )
    }

    pub fn path(&self) -> String {
        let [p0, p1, p2, p3] = self.0;
        format!(
            "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            p0.0, p0.1, p1.0, p1.1, p2.0, p2.1, p3.0, p3.1
        )
    }
}

/// From the side of `a` facing `b` to the side of `b` facing `a`; between two nodes of one
/// column, an arc on the column's outer side.
pub fn route(a: &Placed, b: &Placed) -> Curve {
    let (ay, by) = (a.y + NODE_H / 2.0, b.y + NODE_H / 2.0);
    let (ca, cb) = (Band::of(a.kind).column(), Band::of(b.kind).column());
    if ca == cb {
        // Outer side: left for the left column, right otherwise.
        let left = ca == 0;
        let (ax, bx) = if left {
            (a.x, b.x)
        } else {
            (a.x + a.w, b.x + b.w)
        };
        let bulge = (30.0 + 0.25 * (by - ay).abs()).min(MARGIN_X - 10.0);
        let d = if left { -bulge } else { bulge };
        let ex = if left { bx - 4.0 } else { bx + 4.0 };
        return Curve([(ax, ay), (ax + d, ay), (bx + d, by), (ex, by)]);
    }
    let forward = cb > ca;
    let (ax, bx) = if forward {
        (a.x + a.w, b.x)
    } else {
        (a.x, b.x + b.w)
    };
    let dx = ((bx - ax).abs() * 0.5).max(30.0);
    let (c1, c2) = if forward {
        (ax + dx, bx - dx)
    } else {
        (ax - dx, bx + dx)
    };
    // End a little short of the box, so the arrow head shows.
    let ex = if forward { bx - 4.0 } else { bx + 4.0 };
    Curve([(ax, ay), (c1, ay), (c2, by), (ex, by)])
}

/// A point on the curve where the label covers no node and no other label: the middle if
/// free, else the nearest free spot along the curve or shifted up or down a little. With no
/// free spot, the middle when `always`, else no label. Labels stay between 0 and `width`.
pub fn place_label(
    curve: &Curve,
    label: &str,
    taken: &mut Vec<Rect>,
    always: bool,
    width: f64,
) -> Option<(f64, f64)> {
    let w = label.chars().count() as f64 * SMALL_CHAR_W + 8.0;
    let h = 14.0;
    let rect = |(x, y): (f64, f64)| Rect {
        x: x - w / 2.0,
        y: y - h / 2.0,
        w,
        h,
    };
    let mut first = None;
    // A derived edge's label is only worth its place near the middle.
    let (ts, dys): (&[f64], &[f64]) = if always {
        (&[0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78], &[0.0, -13.0, 13.0])
    } else {
        (&[0.5, 0.4, 0.6], &[0.0])
    };
    for &t in ts {
        let p = curve.at(t);
        let p = (
            p.0.clamp(w / 2.0 + 2.0, (width - w / 2.0 - 2.0).max(w / 2.0 + 2.0)),
            p.1,
        );
        for &dy in dys {
            let q = (p.0, p.1 + dy);
            let r = rect(q);
            first.get_or_insert((q, r));
            if !taken.iter().any(|o| o.overlaps(&r)) {
                taken.push(r);
                return Some(q);
            }
        }
    }
    let (q, r) = first.filter(|_| always)?;
    taken.push(r);
    Some(q)
}
