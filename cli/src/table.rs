//! Aligned plain-text tables for `topics describe` and `groups describe`.
//!
//! Columns are separated by two spaces; numbers are right-aligned so digits line up, text
//! is left-aligned. No borders, so the output stays easy to `grep`, `awk` and `sort`.

use crate::error::Result;
use crate::output::Output;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// A table being filled row by row, printed at once (widths need every row).
#[derive(Debug)]
pub(crate) struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and alignments.
    pub(crate) fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra cells are ignored.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines, header first, without trailing spaces.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.to_string()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| {
                let mut line = String::new();
                for (i, ((_, align), width)) in self.columns.iter().zip(&widths).enumerate() {
                    let cell = row.get(i).map_or("", String::as_str);
                    if i > 0 {
                        line.push_str("  ");
                    }
                    let pad = width.saturating_sub(cell.chars().count());
                    match align {
                        Align::Left => {
                            line.push_str(cell);
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                        Align::Right => {
                            line.extend(std::iter::repeat_n(' ', pad));
                            line.push_str(cell);
                        }
                    }
                }
                line.trim_end().to_string()
            })
            .collect()
    }

    /// Prints the table.
    pub(crate) fn print(&self, out: &mut Output) -> Result<()> {
        for line in self.lines() {
            out.line(&line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_with_numbers_on_the_right() {
        let mut t = Table::new(&[("topic", Align::Left), ("lag", Align::Right)]);
        t.row(vec!["page-views".into(), "7".into()]);
        t.row(vec!["t".into(), "1234".into()]);
        assert_eq!(
            t.lines(),
            ["topic        lag", "page-views     7", "t           1234"]
        );
    }
}
