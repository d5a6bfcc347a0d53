//! `\h [statement]`: psql's help on SQL statements, for the statements hark understands, in
//! psql's layout (`Command:`, `Description:`, `Syntax:`, `URL:`), with hark's syntax where it
//! accepts less than PostgreSQL.

struct Topic {
    cmd: &'static str,
    description: &'static str,
    syntax: &'static str,
    /// The page of PostgreSQL's manual, whose semantics hark follows.
    page: &'static str,
}

const MODES: &str = "

where transaction_mode is one of:

    ISOLATION LEVEL { SERIALIZABLE | REPEATABLE READ | READ COMMITTED | READ UNCOMMITTED }
    READ WRITE | READ ONLY
    [ NOT ] DEFERRABLE";

const SELECT_SYNTAX: &str = "SELECT expression [ [ AS ] output_name ] [, ...]

where expression is one of:

    'text' | number | TRUE | FALSE | NULL | $n
    expression || expression
    expression::type
    pg_notify ( channel, payload )
    pg_listening_channels ( )
    pg_notification_queue_usage ( )
    pg_backend_pid ( )

and type is one of:

    text | varchar | int | bigint | smallint | bool | numeric | float8 | real | json | jsonb

hark has no tables: there is no FROM, WHERE or other clause.";

static TOPICS: [Topic; 14] = [
    Topic {
        cmd: "ABORT",
        description: "abort the current transaction",
        syntax: "ABORT [ WORK | TRANSACTION ] [ AND [ NO ] CHAIN ]",
        page: "sql-abort",
    },
    Topic { cmd: "BEGIN", description: "start a transaction block", syntax: "", page: "sql-begin" },
    Topic {
        cmd: "COMMIT",
        description: "commit the current transaction",
        syntax: "COMMIT [ WORK | TRANSACTION ] [ AND [ NO ] CHAIN ]",
        page: "sql-commit",
    },
    Topic { cmd: "DISCARD", description: "discard session state", syntax: "DISCARD ALL", page: "sql-discard" },
    Topic {
        cmd: "END",
        description: "commit the current transaction",
        syntax: "END [ WORK | TRANSACTION ] [ AND [ NO ] CHAIN ]",
        page: "sql-end",
    },
    Topic { cmd: "LISTEN", description: "listen for a notification", syntax: "LISTEN channel", page: "sql-listen" },
    Topic {
        cmd: "NOTIFY",
        description: "generate a notification",
        syntax: "NOTIFY channel [ , payload ]",
        page: "sql-notify",
    },
    Topic {
        cmd: "RELEASE SAVEPOINT",
        description: "destroy a previously defined savepoint",
        syntax: "RELEASE [ SAVEPOINT ] savepoint_name",
        page: "sql-release-savepoint",
    },
    Topic {
        cmd: "ROLLBACK",
        description: "abort the current transaction",
        syntax: "ROLLBACK [ WORK | TRANSACTION ] [ AND [ NO ] CHAIN ]",
        page: "sql-rollback",
    },
    Topic {
        cmd: "ROLLBACK TO SAVEPOINT",
        description: "roll back to a savepoint",
        syntax: "ROLLBACK [ WORK | TRANSACTION ] TO [ SAVEPOINT ] savepoint_name",
        page: "sql-rollback-to",
    },
    Topic {
        cmd: "SAVEPOINT",
        description: "define a new savepoint within the current transaction",
        syntax: "SAVEPOINT savepoint_name",
        page: "sql-savepoint",
    },
    Topic { cmd: "SELECT", description: "compute values", syntax: SELECT_SYNTAX, page: "sql-select" },
    Topic {
        cmd: "START TRANSACTION",
        description: "start a transaction block",
        syntax: "",
        page: "sql-start-transaction",
    },
    Topic {
        cmd: "UNLISTEN",
        description: "stop listening for a notification",
        syntax: "UNLISTEN { channel | * }",
        page: "sql-unlisten",
    },
];

fn syntax(t: &Topic) -> String {
    match t.cmd {
        "BEGIN" => format!("BEGIN [ WORK | TRANSACTION ] [ transaction_mode [, ...] ]{MODES}"),
        "START TRANSACTION" => format!("START TRANSACTION [ transaction_mode [, ...] ]{MODES}"),
        _ => t.syntax.to_owned(),
    }
}

fn render(t: &Topic) -> String {
    format!(
        "Command:     {}\nDescription: {}\nSyntax:\n{}\n\nURL: https://www.postgresql.org/docs/15/{}.html\n\n",
        t.cmd,
        t.description,
        syntax(t),
        t.page
    )
}

/// What `\h TOPIC` prints (`\h` alone, or `\h *` for every statement's help).
pub fn help(topic: &str) -> String {
    let words: Vec<&str> = topic.split_whitespace().collect();
    let topics = || TOPICS.iter();
    if words.is_empty() {
        return listing(&topics().map(|t| t.cmd).collect::<Vec<_>>());
    }
    if words == ["*"] {
        return topics().map(render).collect();
    }
    // As psql: the whole topic, then fewer and fewer of its words, as a prefix of a statement's
    // name; a name matched in full stands alone.
    for n in (1..=words.len()).rev() {
        let wanted = words[..n].join(" ").to_ascii_uppercase();
        if let Some(t) = topics().find(|t| t.cmd == wanted) {
            return render(t);
        }
        let found: Vec<&Topic> = topics().filter(|t| t.cmd.starts_with(&wanted)).collect();
        if !found.is_empty() {
            return found.into_iter().map(render).collect();
        }
    }
    format!("No help available for \"{}\".\nTry \\h with no arguments to see available help.\n", words.join(" "))
}

/// psql's `Available help:` table: names in columns, down then across, for an 80-column screen.
fn listing(names: &[&str]) -> String {
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0) + 1;
    let columns = ((80 - 3) / width).max(1);
    let rows = names.len().div_ceil(columns);
    let mut out = String::from("Available help:\n");
    for r in 0..rows {
        out.push_str("  ");
        for c in 0..columns - 1 {
            out.push_str(&format!("{:<width$}", names.get(r + c * rows).copied().unwrap_or("")));
        }
        out.push_str(names.get(r + (columns - 1) * rows).copied().unwrap_or(""));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::help;

    #[test]
    fn help_on_notify_is_psqls() {
        assert_eq!(
            help("notify"),
            "Command:     NOTIFY\nDescription: generate a notification\nSyntax:\nNOTIFY channel [ , payload ]\n\n\
             URL: https://www.postgresql.org/docs/15/sql-notify.html\n\n"
        );
        assert!(help("LISTEN").starts_with("Command:     LISTEN\nDescription: listen for a notification\n"));
        assert!(help("rollback to").starts_with("Command:     ROLLBACK TO SAVEPOINT\n"));
        let roll = help("roll");
        assert!(roll.starts_with("Command:     ROLLBACK\n") && roll.contains("Command:     ROLLBACK TO SAVEPOINT\n"));
        assert_eq!(
            help("insert"),
            "No help available for \"insert\".\nTry \\h with no arguments to see available help.\n"
        );
        assert!(help("").starts_with("Available help:\n  ABORT "));
    }
}
