//! `beacon collector user add|remove|passwd|list`: the console's admin accounts, kept in
//! the collector database so that every collector on it shares them. Passwords come from
//! `BEACON_CONSOLE_PASSWORD`, a terminal prompt, or the first line of stdin; never argv.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use beacon_auth::MIN_PASSWORD_CHARS;

/// Environment variable a script can set instead of typing the password.
const PASSWORD_ENV: &str = "BEACON_CONSOLE_PASSWORD";
const MAX_NAME: usize = 64;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// Storage holding the users: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "BEACON_COLLECTOR_DB", default_value = beacon_store::DEFAULT_URL)]
    db: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a console admin (password from BEACON_CONSOLE_PASSWORD, a prompt, or stdin).
    Add { name: String },
    /// Delete a console admin and their API tokens.
    Remove { name: String },
    /// Change a console admin's password.
    Passwd { name: String },
    /// List console admins.
    List,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let db_shown = beacon_store::redact_url(&args.db);
    let store = beacon_collector::open_store(&args.db)
        .await
        .with_context(|| format!("cannot open storage {db_shown}"))?;
    match args.action {
        Action::Add { name } => {
            check_name(&name)?;
            let hash = hashed_password(&name)?;
            if !store.add_user(&name, &hash).await? {
                bail!(
                    "console user `{name}` exists already; use `beacon collector user passwd {name}`"
                );
            }
            println!("console user `{name}` added to {db_shown}");
        }
        Action::Remove { name } => {
            if !store.remove_user(&name).await? {
                bail!("there is no console user `{name}` in {db_shown}");
            }
            println!("console user `{name}` removed from {db_shown}, with their API tokens");
        }
        Action::Passwd { name } => {
            if store.password_hash(&name).await?.is_none() {
                bail!("there is no console user `{name}` in {db_shown}");
            }
            let hash = hashed_password(&name)?;
            if !store.set_password(&name, &hash).await? {
                bail!("console user `{name}` was removed meanwhile");
            }
            println!("password of console user `{name}` changed");
        }
        Action::List => {
            for name in store.user_names().await? {
                println!("{name}");
            }
        }
    }
    Ok(())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        bail!(
            "a user name has 1 to {MAX_NAME} letters, digits, `-`, `_`, `.` or `@`, not `{name}`"
        );
    }
    Ok(())
}

/// The argon2id hash of the password read for `name`.
fn hashed_password(name: &str) -> anyhow::Result<String> {
    let password = read_password(name)?;
    check_password(&password)?;
    beacon_auth::hash_password(&password).context("cannot use this password")
}

fn read_password(name: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("Same password again: ")
            .context("cannot read the password from the terminal")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given: set {PASSWORD_ENV}, type it at the prompt, or pipe it on stdin");
    }
    Ok(password)
}

fn check_password(password: &str) -> anyhow::Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        bail!(
            "the password has {chars} characters; a console password needs at least \
             {MIN_PASSWORD_CHARS} (a few words make a good one); nothing was changed"
        );
    }
    Ok(())
}
