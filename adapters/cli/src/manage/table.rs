//! Plain-text tables: a header, rows, columns left-aligned two spaces apart, no trailing
//! spaces. Widths count characters, which is right for the ASCII the node sends.

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Drops the columns whose cells are all empty (the header does not count).
    pub fn without_empty_columns(mut self) -> Self {
        let keep: Vec<bool> = (0..self.header.len())
            .map(|c| self.rows.iter().any(|r| !r[c].is_empty()))
            .collect();
        let filter = |cells: &mut Vec<String>| {
            let mut i = 0;
            cells.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        };
        filter(&mut self.header);
        self.rows.iter_mut().for_each(filter);
        self
    }

    pub fn render(&self) -> String {
        let lines = std::iter::once(&self.header).chain(&self.rows);
        let mut widths = vec![0; self.header.len()];
        for cells in lines.clone() {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for cells in lines {
            let mut line = String::new();
            for (cell, w) in cells.iter().zip(&widths) {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&["APP", "STATE", "ERROR"]);
        t.row(vec!["echo".into(), "running".into(), String::new()]);
        t.row(vec!["a-longer-name".into(), "failed".into(), "boom".into()]);
        assert_eq!(
            t.render(),
            "APP            STATE    ERROR\n\
             echo           running\n\
             a-longer-name  failed   boom\n"
        );
    }

    #[test]
    fn empty_columns_can_go_and_short_rows_are_padded() {
        let mut t = Table::new(&["A", "B", "C"]);
        t.row(vec!["1".into()]);
        t.row(vec!["2".into(), String::new(), "x".into()]);
        assert!(!t.is_empty());
        assert_eq!(t.without_empty_columns().render(), "A  C\n1\n2  x\n");
        assert!(Table::new(&["A"]).is_empty());
    }
}
