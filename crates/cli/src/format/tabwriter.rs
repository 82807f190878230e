//! Elastic tabstops as Go's `text/tabwriter` lays them out.
//!
//! docker prints tables with `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`:
//! each tab-terminated cell is padded to the widest cell of its column block
//! plus 3 spaces, at least 10 wide; the last cell of a line is not padded.
//! A column block is a run of consecutive lines that have a cell in that column.

struct Cell {
    text: String,
    width: usize,
}

struct Writer<'a> {
    lines: &'a [Vec<Cell>],
    minwidth: usize,
    padding: usize,
    widths: Vec<usize>,
    out: String,
}

impl Writer<'_> {
    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            let line = &self.lines[i];
            for (j, c) in line.iter().enumerate() {
                self.out.push_str(&c.text);
                if j < self.widths.len() {
                    let pad = self.widths[j].saturating_sub(c.width);
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A cell exists in this column: print everything before the block.
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }
}

/// Aligns tab-separated text like `tabwriter.NewWriter(w, minwidth, 1, padding, ' ', 0)`.
pub fn align(input: &str, minwidth: usize, padding: usize) -> String {
    let raw: Vec<&str> = input.split('\n').collect();
    let n = raw.len();
    let lines: Vec<Vec<Cell>> = raw
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n && l.is_empty() {
                Vec::new()
            } else {
                l.split('\t')
                    .map(|t| Cell {
                        text: t.to_string(),
                        width: t.chars().count(),
                    })
                    .collect()
            }
        })
        .collect();
    let mut w = Writer {
        lines: &lines,
        minwidth,
        padding,
        widths: Vec::new(),
        out: String::with_capacity(input.len() * 2),
    };
    w.format(0, lines.len());
    w.out
}

/// docker's table settings: minimum width 10, padding 3.
pub fn docker_table(input: &str) -> String {
    align(input, 10, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_header_with_no_rows() {
        let s = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n";
        assert_eq!(
            docker_table(s),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn columns_grow_to_widest_cell() {
        let s = "NETWORK ID\tNAME\tDRIVER\tSCOPE\n0123456789ab\tbridge\tbridge\tlocal\nfedcba987654\tmy-long-network\tbridge\tlocal\n";
        assert_eq!(
            docker_table(s),
            "NETWORK ID     NAME              DRIVER    SCOPE\n\
             0123456789ab   bridge            bridge    local\n\
             fedcba987654   my-long-network   bridge    local\n"
        );
    }

    #[test]
    fn blocks_are_split_by_lines_without_the_column() {
        // The single-cell middle line ends the column block.
        let s = "a\tb\nlonger-cell\n\tc\n";
        assert_eq!(docker_table(s), "a         b\nlonger-cell\n          c\n");
    }

    #[test]
    fn unicode_counts_chars() {
        let s = "\"sh -c 'trap…\"\tx\n\"ab\"\ty\n";
        assert_eq!(
            docker_table(s),
            "\"sh -c 'trap…\"   x\n\"ab\"             y\n"
        );
    }

    #[test]
    fn no_trailing_newline_kept() {
        assert_eq!(docker_table("a\tb"), "a         b");
    }
}
