//! Where sequences go: ASFF findings (to a file or stdout now; Security Hub later).

pub mod asff;
pub mod story;
