//! `candor rules`: the catalog, for people (table), tools (JSON) and docs
//! (Markdown, the source of docs/rules.md).

use std::io::Write;

use anyhow::Result;
use candor_contract::rules::{RULES, catalog_markdown};
use clap::{Args, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets};

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

pub fn run(args: RulesArgs) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match args.format {
        RulesFormat::Json => {
            serde_json::to_writer_pretty(&mut out, RULES)?;
            writeln!(out)?;
        }
        RulesFormat::Markdown => out.write_all(catalog_markdown().as_bytes())?,
        RulesFormat::Table => {
            let mut table = Table::new();
            table
                .load_style(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(["§", "rule", "status", "severity", "expects"]);
            for r in RULES {
                let status = r.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
                table.add_row([
                    r.section.number().to_string(),
                    r.id.to_owned(),
                    status,
                    r.severity.to_string(),
                    r.expects.to_owned(),
                ]);
            }
            writeln!(out, "{table}")?;
        }
    }
    out.flush()?;
    Ok(Outcome::Clean)
}
