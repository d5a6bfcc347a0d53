//! psql's output formats: aligned and unaligned tables, tuples-only, and error reports with the
//! `LINE n:` excerpt and caret that libpq builds for errors that carry a position.

use hark::QueryResult;

/// How results are printed: psql's `-A` and `-t`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStyle {
    /// `-A`: fields separated by `|`, no padding.
    pub unaligned: bool,
    /// `-t`: rows only, no header and no row-count footer.
    pub tuples_only: bool,
}

/// Renders the rows of a `SELECT` as psql does with `style`.
pub fn render_table(r: &QueryResult, style: TableStyle) -> String {
    if style.unaligned {
        render_unaligned(r, style.tuples_only)
    } else {
        render_aligned(r, style.tuples_only)
    }
}

fn footer(rows: usize) -> String {
    if rows == 1 {
        "(1 row)".to_owned()
    } else {
        format!("({rows} rows)")
    }
}

fn render_unaligned(r: &QueryResult, tuples_only: bool) -> String {
    let mut out = String::new();
    if !tuples_only {
        out.push_str(&r.columns.join("|"));
        out.push('\n');
    }
    for row in &r.rows {
        let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("")).collect();
        out.push_str(&cells.join("|"));
        out.push('\n');
    }
    if !tuples_only {
        out.push_str(&footer(r.rows.len()));
        out.push('\n');
    }
    out
}

/// psql right-aligns columns of numeric types; the result says each column's type.
fn is_numeric_type(r: &QueryResult, col: usize) -> bool {
    matches!(r.types.get(col).copied(), Some("int2" | "int4" | "int8" | "numeric" | "float4" | "float8" | "oid"))
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn render_aligned(r: &QueryResult, tuples_only: bool) -> String {
    let ncols = r.columns.len();
    let numeric: Vec<bool> = (0..ncols).map(|c| is_numeric_type(r, c)).collect();
    // Each cell split into its lines; a NULL prints as nothing.
    let cells: Vec<Vec<Vec<&str>>> = r
        .rows
        .iter()
        .map(|row| {
            (0..ncols).map(|c| row.get(c).and_then(|v| v.as_deref()).unwrap_or("").split('\n').collect()).collect()
        })
        .collect();
    let mut widths: Vec<usize> = r.columns.iter().map(|h| width(h)).collect();
    for row in &cells {
        for (c, lines) in row.iter().enumerate() {
            for l in lines {
                widths[c] = widths[c].max(width(l));
            }
        }
    }
    let mut out = String::new();
    if !tuples_only {
        let header: Vec<String> = r
            .columns
            .iter()
            .enumerate()
            .map(|(c, h)| {
                let pad = widths[c] - width(h);
                let left = pad / 2;
                format!(" {}{}{} ", " ".repeat(left), h, " ".repeat(pad - left))
            })
            .collect();
        out.push_str(&header.join("|"));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        out.push_str(&rule.join("+"));
        out.push('\n');
    }
    for row in &cells {
        let height = row.iter().map(|l| l.len()).max().unwrap_or(1);
        for i in 0..height {
            for (c, lines) in row.iter().enumerate() {
                let text = lines.get(i).copied().unwrap_or("");
                let more = i + 1 < lines.len();
                let last = c + 1 == ncols;
                if c > 0 {
                    out.push('|');
                }
                out.push(' ');
                let pad = widths[c] - width(text);
                if numeric[c] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(text);
                } else {
                    out.push_str(text);
                    if !last || more {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if more {
                    out.push('+');
                } else if !last {
                    out.push(' ');
                }
            }
            out.push('\n');
        }
    }
    if !tuples_only {
        out.push_str(&footer(r.rows.len()));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The report psql prints for an error: `ERROR:  message`, then for a positioned error the line of
/// `query` it points into and a caret under the character (libpq's `reportErrorPosition`), then
/// DETAIL and HINT. Each line ends with a newline.
pub fn render_error(e: &hark::Error, query: Option<&str>) -> String {
    let mut out = format!("ERROR:  {}\n", e.message());
    if let (Some(pos), Some(q)) = (e.position(), query) {
        out.push_str(&error_position(q, pos));
    }
    if let Some(d) = e.detail() {
        out.push_str(&format!("DETAIL:  {d}\n"));
    }
    if let Some(h) = e.hint() {
        out.push_str(&format!("HINT:  {h}\n"));
    }
    out
}

/// The `LINE n: …` excerpt and caret line for the 1-based character position `pos` in `query`,
/// cut to 60 columns around the position as libpq does; empty when `pos` is past the end.
pub fn error_position(query: &str, pos: usize) -> String {
    const DISPLAY_SIZE: usize = 60;
    const MIN_RIGHT_CUT: usize = 10;
    // Tabs print as spaces; every character is taken as one column wide.
    let chars: Vec<char> = query.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
    let Some(loc) = pos.checked_sub(1) else { return String::new() };
    let mut line = 1;
    let mut ibeg = 0;
    let mut iend = None;
    for (i, &c) in chars.iter().enumerate() {
        if c == '\r' || c == '\n' {
            if i < loc {
                if c == '\r' || i == 0 || chars[i - 1] != '\r' {
                    line += 1;
                }
                ibeg = i + 1;
            } else {
                iend = Some(i);
                break;
            }
        }
    }
    let mut iend = iend.unwrap_or(chars.len());
    if loc > chars.len() {
        return String::new();
    }
    let (mut beg_trunc, mut end_trunc) = (false, false);
    if iend - ibeg > DISPLAY_SIZE {
        if ibeg + DISPLAY_SIZE >= loc + MIN_RIGHT_CUT {
            while iend - ibeg > DISPLAY_SIZE {
                iend -= 1;
            }
            end_trunc = true;
        } else {
            while loc + MIN_RIGHT_CUT < iend {
                iend -= 1;
                end_trunc = true;
            }
            while iend - ibeg > DISPLAY_SIZE {
                ibeg += 1;
                beg_trunc = true;
            }
        }
    }
    let mut prefix = format!("LINE {line}: ");
    if beg_trunc {
        prefix.push_str("...");
    }
    let text: String = chars[ibeg..iend].iter().collect();
    let caret_col = prefix.chars().count() + (loc - ibeg);
    format!("{prefix}{text}{}\n{}^\n", if end_trunc { "..." } else { "" }, " ".repeat(caret_col))
}

/// psql's line for a notification, in both of its forms.
pub fn notification_line(n: &hark::NotificationRef<'_>) -> String {
    if n.payload.is_empty() {
        format!("Asynchronous notification \"{}\" received from server process with PID {}.", n.channel, n.pid)
    } else {
        format!(
            "Asynchronous notification \"{}\" with payload \"{}\" received from server process with PID {}.",
            n.channel, n.payload, n.pid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A result whose columns are `text`, except those named in `numeric` (`int4`).
    fn result(cols: &[&str], rows: &[&[Option<&str>]]) -> QueryResult {
        typed(cols, &[], rows)
    }

    fn typed(cols: &[&str], numeric: &[&str], rows: &[&[Option<&str>]]) -> QueryResult {
        QueryResult {
            tag: format!("SELECT {}", rows.len()),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            types: cols.iter().map(|c| if numeric.contains(c) { "int4" } else { "text" }).collect(),
            rows: rows.iter().map(|r| r.iter().map(|c| c.map(str::to_owned)).collect()).collect(),
        }
    }

    #[test]
    fn aligned_tables_match_psql() {
        // Expected texts are psql 15's output for the same values.
        let r = typed(&["x", "long_column_name", "n"], &["long_column_name"], &[&[Some("a"), Some("2"), None]]);
        assert_eq!(
            render_table(&r, TableStyle::default()),
            " x | long_column_name | n \n---+------------------+---\n a |                2 | \n(1 row)\n\n"
        );
        let r = result(&["?column?", "?column?"], &[&[Some("multi\nline"), Some("x")]]);
        assert_eq!(
            render_table(&r, TableStyle::default()),
            " ?column? | ?column? \n----------+----------\n multi   +| x\n line     | \n(1 row)\n\n"
        );
        let r = result(&["x", "y"], &[&[Some("abc"), Some("a\nbcdefghijkl")]]);
        assert_eq!(
            render_table(&r, TableStyle { tuples_only: true, unaligned: false }),
            " abc | a          +\n     | bcdefghijkl\n\n"
        );
        let r = typed(&["a"], &["a"], &[&[Some("1")], &[Some("22")]]);
        assert_eq!(render_table(&r, TableStyle::default()), " a  \n----\n  1\n 22\n(2 rows)\n\n");
        let r = result(&["?column?"], &[]);
        assert_eq!(render_table(&r, TableStyle::default()), " ?column? \n----------\n(0 rows)\n\n");
        assert_eq!(render_table(&r, TableStyle { tuples_only: true, unaligned: false }), "\n");
    }

    #[test]
    fn unaligned_tables_match_psql() {
        let r = result(&["x", "y"], &[&[Some("abc"), Some("a\nbcdefghijkl")]]);
        assert_eq!(
            render_table(&r, TableStyle { unaligned: true, tuples_only: false }),
            "x|y\nabc|a\nbcdefghijkl\n(1 row)\n"
        );
        assert_eq!(render_table(&r, TableStyle { unaligned: true, tuples_only: true }), "abc|a\nbcdefghijkl\n");
    }

    #[test]
    fn error_positions_match_libpq() {
        assert_eq!(
            error_position("NOTIFY virtual 'x';", 16),
            "LINE 1: NOTIFY virtual 'x';\n                       ^\n"
        );
        assert_eq!(error_position("SELECT 1 +;", 11), "LINE 1: SELECT 1 +;\n                  ^\n");
        assert_eq!(error_position("SELECT 'a',\n  nope x;", 21), "LINE 2:   nope x;\n                ^\n");
        let long = format!("NOTIFY c, '{}' oops;", "p".repeat(80));
        let at = long.find("oops").unwrap() + 1;
        assert_eq!(
            error_position(&long, at),
            format!("LINE 1: ...{}' oops;\n{}^\n", "p".repeat(53), " ".repeat(8 + 3 + 55))
        );
        assert_eq!(error_position("x", 5), "");
    }
}
