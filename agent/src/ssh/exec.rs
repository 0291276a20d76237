//! Running one git service over an SSH channel: authorize, spawn git, and
//! stream the channel's data to git's stdin and git's stdout/stderr back, never
//! holding a pack in memory.

use std::process::ExitStatus;
use std::sync::{Arc, OnceLock};

use hangar_core::store::events::RefUpdate;
use hangar_core::store::users::User;
use russh::ChannelMsg;
use russh::server::Msg;
use russh::{ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};

use super::command::GitCommand;
use crate::agent::Agent;
use crate::git::access::{self, Denied};
use crate::git::push;
use crate::git::service::{self, Mode, Service};

/// Most of git's output held back after a push's command list, so the push is
/// recorded before the client reads git's report (progress and the report are
/// small; past this the rest streams through).
const MAX_HELD: usize = 8 << 20;

type Writer = ChannelWriteHalf<Msg>;

/// Runs `command` for `user` on the channel and closes it with git's exit
/// status; any refusal is one line on stderr and exit status 1.
pub async fn run(
    agent: Arc<Agent>,
    user: User,
    channel: russh::Channel<Msg>,
    command: GitCommand,
    protocol: Option<String>,
) {
    let (mut reader, writer) = channel.split();
    let code = match serve(&agent, &user, &mut reader, &writer, &command, protocol).await {
        Ok(code) => code,
        Err(message) => {
            tracing::info!(user = %user.name, repo = %command.repo, "ssh git refused: {message}");
            let _ = writer
                .extended_data_bytes(1, format!("hangar: {message}\n"))
                .await;
            1
        }
    };
    let _ = writer.exit_status(code).await;
    let _ = writer.eof().await;
    let _ = writer.close().await;
}

async fn serve(
    agent: &Arc<Agent>,
    user: &User,
    reader: &mut ChannelReadHalf,
    writer: &Writer,
    command: &GitCommand,
    protocol: Option<String>,
) -> Result<u32, String> {
    let (repo, path) = access::authorize(
        agent,
        Some(user),
        &command.repo.to_string(),
        command.service,
    )
    .await
    .map_err(|denied| match denied {
        Denied::NotFound(name) => {
            format!("repository {name} not found; see `hangar repo list` for the repositories you can use")
        }
        other => other.to_string(),
    })?;
    let mut child = service::command(command.service, &path, protocol.as_deref(), Mode::Session)
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("git child has no pipes".into());
    };
    let pushing = command.service == Service::ReceivePack;
    let hold = Arc::new(OnceLock::new());
    let output = tokio::spawn(forward_stdout(stdout, writer.make_writer(), hold.clone()));
    // git's messages go to the client's stderr, as sshd would pass them.
    let mut to_stderr = writer.make_writer_ext(Some(1));
    let errors = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stderr, &mut to_stderr).await;
    });

    let limit = agent.settings.max_push_mb.saturating_mul(1 << 20);
    let updates = OnceLock::new();
    let feeding = feed_stdin(reader, stdin, pushing.then_some(&updates), &hold, limit);
    tokio::pin!(feeding);
    let status: std::io::Result<ExitStatus> = tokio::select! {
        fed = &mut feeding => match fed {
            Ok(()) => child.wait().await,
            Err(abort) => {
                // A vanished client or an oversized push: git's quarantine is
                // dropped with the process, so refs stay as they were.
                let _ = child.kill().await;
                let _ = output.await;
                let _ = errors.await;
                return Err(abort);
            }
        },
        // git finished before the client closed its side (fetches end this way).
        status = child.wait() => status,
    };
    let held = output.await.unwrap_or_default();
    let _ = errors.await;
    let code = match status {
        Ok(status) => status.code().map_or(1, |c| c as u32),
        Err(e) => return Err(format!("cannot wait for git: {e}")),
    };
    if let Some(updates) = updates.get() {
        push::record(agent, Some(user.id), &repo, &path, updates.clone())
            .await
            .map_err(|e| format!("push applied but not recorded: {e}"))?;
    }
    if !held.is_empty() {
        let _ = writer.data_bytes(held).await;
    }
    Ok(code)
}

/// Copies git's stdout to the channel until git closes it. Once `hold` is set
/// (a push's command list went to git) output is kept and returned instead,
/// up to [`MAX_HELD`].
async fn forward_stdout(
    mut stdout: ChildStdout,
    mut channel: impl AsyncWrite + Unpin,
    hold: Arc<OnceLock<()>>,
) -> Vec<u8> {
    let mut held = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if hold.get().is_some() && held.len() + n <= MAX_HELD {
            held.extend_from_slice(&buf[..n]);
            continue;
        }
        if !held.is_empty() && channel.write_all(&std::mem::take(&mut held)).await.is_err() {
            break;
        }
        if channel.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    held
}

/// Feeds the channel's data to git's stdin until the client's EOF. For a push
/// (`updates` given), parses the command list first and sets `hold` before
/// git sees it. Errors when the client vanishes or the push is too large.
async fn feed_stdin(
    reader: &mut ChannelReadHalf,
    mut stdin: ChildStdin,
    updates: Option<&OnceLock<Vec<RefUpdate>>>,
    hold: &OnceLock<()>,
    limit: u64,
) -> Result<(), String> {
    let mut head = Vec::new();
    let mut fed: u64 = 0;
    loop {
        let data = match reader.wait().await {
            Some(ChannelMsg::Data { data }) => data,
            Some(ChannelMsg::Eof) => break,
            // Requests answered before exec (env, exec itself) are still queued here.
            Some(_) => continue,
            None => return Err("the client went away; nothing was changed".into()),
        };
        fed += data.len() as u64;
        if fed > limit {
            return Err(format!(
                "push is larger than {} MiB (max_push_mb); nothing was changed",
                limit >> 20
            ));
        }
        if let Some(updates) = updates
            && updates.get().is_none()
        {
            head.extend_from_slice(&data);
            match push::parse_commands(&head) {
                Ok(None) => continue,
                Ok(Some((parsed, _))) => {
                    let _ = updates.set(parsed);
                    let _ = hold.set(());
                    // git reads the command list itself; it gets the same bytes.
                    if stdin.write_all(&std::mem::take(&mut head)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        if stdin.write_all(&data).await.is_err() {
            // git stopped reading (it is done or failed); its exit status tells which.
            break;
        }
    }
    // A push that ended before its command list: git sees the same truncated input.
    if !head.is_empty() {
        let _ = stdin.write_all(&head).await;
    }
    drop(stdin);
    Ok(())
}
