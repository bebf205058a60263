//! The gateway configuration: the TOML surface (`file`), its loader (`load`)
//! and the validated model the gateway runs on (`model`).

mod file;
mod load;
mod model;

pub use load::{ConfigError, format_rfc3339, load_file, load_str};
pub use model::*;
