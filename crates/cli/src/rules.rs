//! `candor rules`: the catalog, for people (table), tools (JSON) and docs
//! (Markdown, the source of docs/rules.md).

use std::io::{IsTerminal, Write};

use anyhow::Result;
use candor_contract::rules::{RULES, catalog_markdown};
use clap::{Args, ValueEnum};
use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
    format: RulesFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RulesFormat {
    Table,
    Json,
    Markdown,
}

const HEADER: [&str; 5] = ["§", "rule", "status", "severity", "expects"];

/// The width a boxed table must fit: the terminal's, or `COLUMNS` when
/// set; None when stdout is not a terminal (a file, a pipe to grep).
fn table_width() -> Option<u16> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok());
    if std::io::stdout().is_terminal() {
        // comfy-table asks the terminal itself when not given a width.
        return Some(columns.unwrap_or(0));
    }
    columns
}

/// A box-drawn table that wraps its last columns to fit `width` (0: the
/// terminal's width).
fn boxed(rows: &[[String; 5]], width: u16) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(HEADER);
    if width > 0 {
        table.set_width(width);
    }
    for row in rows {
        table.add_row(row.clone());
    }
    // Only the prose wraps: a rule ID cut in two could not be searched for.
    for column in table.column_iter_mut().take(4) {
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
    table
}

/// One line per rule, columns padded with spaces and never wrapped, so
/// `grep`, `cut` and `awk` see whole rules.
fn plain(rows: &[[String; 5]]) -> String {
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

pub fn run(args: RulesArgs) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match args.format {
        RulesFormat::Json => {
            serde_json::to_writer_pretty(&mut out, RULES)?;
            writeln!(out)?;
        }
        RulesFormat::Markdown => out.write_all(catalog_markdown().as_bytes())?,
        RulesFormat::Table => {
            let rows: Vec<[String; 5]> = RULES
                .iter()
                .map(|r| {
                    [
                        r.section.number().to_string(),
                        r.id.to_owned(),
                        r.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                        r.severity.to_string(),
                        r.expects.to_owned(),
                    ]
                })
                .collect();
            match table_width() {
                Some(width) => writeln!(out, "{}", boxed(&rows, width))?,
                None => out.write_all(plain(&rows).as_bytes())?,
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Clean)
}
