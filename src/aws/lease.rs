//! The S3 state's lease: who holds it, whether a holder is known to be gone, keeping it while
//! a run works, and releasing it by hand.
//!
//! A run claims the state object with a lease naming itself: on ECS its task (cluster and task
//! ARN, from the task metadata endpoint), elsewhere its host and process id. A lease is short
//! (`aws.lease`, 5 minutes) and renewed every third of that while the run works, so a run that
//! dies without releasing it blocks the next runs for at most that long. A later run does not
//! even wait that long when it can tell the holder is gone: its ECS task is STOPPED
//! (`ecs:DescribeTasks`), or, on the same host (same host name, boot and pid namespace), its
//! process no longer exists. Anything else (a
//! holder on another host, an ECS answer that does not say) counts as alive until the lease
//! expires: taking over a live run's lease would let two runs write the same findings.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::config::HostEnvironment;
use crate::state::{Lease, State, StateError, StateStore};
use crate::time::{Millis, format_rfc3339};

/// An ECS task, as its metadata endpoint names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcsTask {
    pub cluster: String,
    pub task: String,
}

/// Who this run is, as its lease records it.
#[derive(Clone, Debug)]
pub struct Identity {
    /// For logs and errors: the ECS task id or the host name, and the process id.
    pub holder: String,
    pub host: Option<String>,
    pub pid: u32,
    /// The host's boot and this process's pid namespace (see [`pid_space`]).
    pub pid_space: Option<String>,
    pub ecs: Option<EcsTask>,
}

impl Identity {
    /// This process: its ECS task when the environment has the task metadata endpoint (asked
    /// once, with a short timeout), else its host name and process id.
    pub fn here(env: &HostEnvironment) -> Identity {
        let pid = std::process::id();
        let host = env.hostname.clone().or_else(kernel_hostname);
        let ecs = env.ecs_metadata_uri.as_deref().and_then(|uri| {
            match ecs_task(uri, Duration::from_secs(2)) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "could not read the ECS task metadata: the state's lease names this \
                         run by host and process only, and a later run waits for it to expire \
                         if this task dies"
                    );
                    None
                }
            }
        });
        let name = match &ecs {
            Some(t) => t.task.rsplit('/').next().unwrap_or(&t.task).to_string(),
            None => env
                .ecs_metadata_uri
                .as_deref()
                .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                .map(str::to_string)
                .or_else(|| host.clone())
                .unwrap_or_else(|| "local".into()),
        };
        Identity {
            holder: format!("{name}:{pid}"),
            host: if ecs.is_some() { None } else { host },
            pid,
            pid_space: pid_space(),
            ecs,
        }
    }

    /// A lease of `duration` from `now` naming this run.
    pub fn lease(&self, now: Millis, duration: Millis) -> Lease {
        Lease {
            holder: self.holder.clone(),
            since: now,
            expires: now.saturating_add(duration),
            host: self.host.clone(),
            pid: self.ecs.is_none().then_some(self.pid),
            pid_space: self.ecs.is_none().then(|| self.pid_space.clone()).flatten(),
            ecs_cluster: self.ecs.as_ref().map(|t| t.cluster.clone()),
            ecs_task: self.ecs.as_ref().map(|t| t.task.clone()),
        }
    }
}

/// The kernel's host name (Linux), when the environment gives none.
fn kernel_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Where a process id names one process (Linux): the boot (`boot_id`) and the pid namespace
/// of this process. Two processes with the same host name and these alike see the same
/// processes under the same ids.
fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// Whether process `pid` of this host still runs: None when this system cannot tell (no
/// `/proc`). A zombie (killed, not yet reaped) no longer runs.
pub fn process_alive(pid: u32) -> Option<bool> {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return None;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)`.
        Ok(stat) => Some(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_none_or(|state| state != 'Z' && state != 'X'),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// The task's cluster and ARN from the ECS task metadata endpoint (`<uri>/task`).
///
/// # Errors
/// The endpoint cannot be reached in `timeout`, or answers something else than task metadata.
pub fn ecs_task(metadata_uri: &str, timeout: Duration) -> Result<EcsTask, String> {
    let url = format!("{}/task", metadata_uri.trim_end_matches('/'));
    let body = http_get(&url, timeout).map_err(|e| format!("GET {url}: {e}"))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))?;
    let field = |k: &str| {
        doc.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("GET {url}: no {k} in the task metadata"))
    };
    Ok(EcsTask {
        cluster: field("Cluster")?,
        task: field("TaskARN")?,
    })
}

/// A plain HTTP GET (the ECS metadata endpoint is HTTP on a link-local address), at most 1 MiB.
fn http_get(url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    use std::net::ToSocketAddrs;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "not an http:// URL".to_string())?;
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{addr} has no address"))?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&sock, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {:?}", status.trim_end()));
    }
    let mut length: Option<u64> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok();
        }
    }
    const MAX: u64 = 1 << 20;
    let mut body = Vec::new();
    reader
        .take(length.unwrap_or(MAX + 1).min(MAX + 1))
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    if body.len() as u64 > MAX {
        return Err("answered more than 1 MiB".into());
    }
    Ok(body)
}

/// Why the holder of `lease` is known to be gone, or None when it may still run.
pub async fn holder_gone(
    lease: &Lease,
    me: &Identity,
    retry: &super::RetryOptions,
    record: &super::RecordCalls,
) -> Option<String> {
    if let (Some(cluster), Some(task)) = (&lease.ecs_cluster, &lease.ecs_task) {
        // The task's region is in its ARN (`arn:PARTITION:ecs:REGION:ACCOUNT:task/...`).
        let region = task.split(':').nth(3).filter(|r| !r.is_empty())?;
        let conf = super::sdk_config(Some(region), retry).await;
        let client = super::clients::ecs(&conf, record);
        let out = match client
            .describe_tasks()
            .cluster(cluster)
            .tasks(task)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(
                    task = %task,
                    error = %super::describe_error(&e),
                    "could not ask ECS whether the task holding the state still runs"
                );
                return None;
            }
        };
        if let Some(t) = out.tasks().iter().find(|t| t.task_arn() == Some(task)) {
            return (t.last_status() == Some("STOPPED")).then(|| {
                format!(
                    "its ECS task {task} is STOPPED ({})",
                    t.stopped_reason().unwrap_or("no reason given")
                )
            });
        }
        // ECS forgets stopped tasks after a while; a task of this cluster it does not know
        // is one of those.
        return out
            .failures()
            .iter()
            .any(|f| f.arn() == Some(task) && f.reason() == Some("MISSING"))
            .then(|| format!("ECS no longer knows its task {task} (stopped long ago)"));
    }
    let same_place = lease.host.is_some()
        && lease.host == me.host
        && lease.pid_space.is_some()
        && lease.pid_space == me.pid_space;
    match (lease.pid, &lease.host) {
        (Some(pid), Some(host)) if same_place && pid != me.pid => (process_alive(pid)
            == Some(false))
        .then(|| format!("its process {pid} on this host ({host}) no longer exists")),
        _ => None,
    }
}

/// Renews a run's lease every third of its duration until stopped, writing the state the
/// run started from with the lease moved forward (a conditional write, like every write of
/// the state: if another run took the state over, the renewal fails and so will the run's
/// final save).
pub struct Keeper<'a> {
    store: &'a (dyn StateStore + Sync),
    state: State,
    me: &'a Identity,
    duration: Millis,
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl<'a> Keeper<'a> {
    /// `state` is what the run claimed (its lease is replaced at each renewal).
    pub fn new(
        store: &'a (dyn StateStore + Sync),
        state: State,
        me: &'a Identity,
        duration: Millis,
    ) -> Keeper<'a> {
        Keeper {
            store,
            state,
            me,
            duration,
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Renews until [`Keeper::stop`]; run it on a thread of its own.
    pub fn run(&self) {
        let every = Duration::from_millis((self.duration / 3).max(1) as u64);
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let (guard, _) = self
                .wake
                .wait_timeout(stopped, every)
                .unwrap_or_else(|e| e.into_inner());
            stopped = guard;
            if *stopped {
                return;
            }
            // Under the lock: `stop` waits for a renewal under way, so the run's own save
            // never races one.
            let now = super::run::now_millis();
            let mut state = self.state.clone();
            state.lease = Some(self.me.lease(now, self.duration));
            match self.store.save(&state) {
                Ok(()) => tracing::debug!(
                    until = %format_rfc3339(now.saturating_add(self.duration)),
                    "state lease renewed"
                ),
                Err(e @ StateError::Conflict { .. }) => {
                    tracing::error!(
                        "{e}; the lease is no longer this run's: its findings may be written again by the run that took the state over"
                    );
                    return;
                }
                Err(e) => tracing::warn!("renewing the state's lease: {e}"),
            }
        }
    }

    /// Stops renewing (after a renewal under way).
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// What `correlator state release` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// Nothing to free (a message says why).
    Nothing(String),
    /// A lease is there; it is freed only when its holder is named (`--holder`).
    NotConfirmed(String),
    /// The lease named another holder than the one given.
    OtherHolder(String),
    Freed(String),
}

/// Frees the lease of the state in `store` when `holder` names its holder. The write is
/// conditional on the version read, so a run that claimed the state meanwhile keeps it.
///
/// # Errors
/// The state cannot be read or written.
pub fn release(store: &dyn StateStore, holder: Option<&str>) -> Result<Released, StateError> {
    let where_ = store.describe();
    let Some(mut state) = store.load()? else {
        return Ok(Released::Nothing(format!(
            "no state at {where_} yet: nothing to release"
        )));
    };
    let Some(lease) = state.lease.clone() else {
        return Ok(Released::Nothing(format!(
            "state {where_} holds no lease: nothing to release"
        )));
    };
    let now = super::run::now_millis();
    let what = format!(
        "the lease of {} on state {where_} (taken {}, {} {})",
        lease.holder,
        format_rfc3339(lease.since),
        if lease.expires > now {
            "expires"
        } else {
            "expired"
        },
        format_rfc3339(lease.expires)
    );
    match holder {
        None => Ok(Released::NotConfirmed(format!(
            "{what} is held; if that run is gone, free it with `correlator state release --holder '{}'`",
            lease.holder
        ))),
        Some(h) if h != lease.holder => Ok(Released::OtherHolder(format!(
            "{what} is not held by {h:?}: nothing released"
        ))),
        Some(_) => {
            state.lease = None;
            store.save(&state)?;
            Ok(Released::Freed(format!(
                "released {what}; the next run takes the state"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_reaped_one_does_not() {
        assert_eq!(process_alive(std::process::id()), Some(true));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process_alive(pid), Some(false));
    }

    #[test]
    fn the_holder_is_saved_with_the_state_and_a_version_3_lease_still_loads() {
        let mut st = State::new();
        st.lease = Some(Lease {
            holder: "abc:1".into(),
            since: 1_746_177_600_000,
            expires: 1_746_177_900_000,
            ecs_cluster: Some("arn:aws:ecs:us-east-1:111122223333:cluster/c".into()),
            ecs_task: Some("arn:aws:ecs:us-east-1:111122223333:task/c/abc".into()),
            ..Lease::default()
        });
        let back = State::from_json(std::str::from_utf8(&st.to_json()).unwrap(), "t").unwrap();
        assert_eq!(back.lease, st.lease);
        let v3 = r#"{"format":"finding-correlator-state","version":3,"written_by":"x","baselines":{"accounts":{}},"lease":{"holder":"h:1","since":"2025-05-02T09:00:00.000Z","expires":"2025-05-02T10:00:00.000Z"}}"#;
        let old = State::from_json(v3, "t").unwrap();
        let l = old.lease.unwrap();
        assert_eq!(l.holder, "h:1");
        assert!(l.host.is_none() && l.pid.is_none() && l.ecs_task.is_none());
    }

    #[test]
    fn a_local_lease_names_the_host_and_process() {
        let env = HostEnvironment {
            ecs_metadata_uri: None,
            hostname: Some("build-7".into()),
        };
        let me = Identity::here(&env);
        let l = me.lease(1_000, 300_000);
        assert_eq!(l.holder, format!("build-7:{}", std::process::id()));
        assert_eq!(l.host.as_deref(), Some("build-7"));
        assert_eq!(l.pid, Some(std::process::id()));
        assert!(
            l.pid_space.as_deref().is_some_and(|s| s.contains("pid:[")),
            "{l:?}"
        );
        assert_eq!((l.since, l.expires), (1_000, 301_000));
        assert!(l.ecs_task.is_none() && l.ecs_cluster.is_none());
    }

    #[tokio::test]
    async fn a_holder_on_this_host_is_gone_only_when_its_process_is() {
        let env = HostEnvironment {
            ecs_metadata_uri: None,
            hostname: Some("build-7".into()),
        };
        let me = Identity::here(&env);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let retry = super::super::RetryOptions::default();
        let lease = |host: &str, pid: u32| Lease {
            host: Some(host.into()),
            pid: Some(pid),
            ..me.lease(0, 1)
        };
        // (lease, gone?)
        let cases = [
            (lease("build-7", dead), true),
            (lease("other-host", dead), false),
            // Another pid namespace (a container with the same host name), or another boot.
            (
                Lease {
                    pid_space: Some("other-boot/pid:[1]".into()),
                    ..lease("build-7", dead)
                },
                false,
            ),
            // Alive: this test's parent process.
            (lease("build-7", std::os::unix::process::parent_id()), false),
            (
                Lease {
                    host: None,
                    pid: None,
                    ..me.lease(0, 1)
                },
                false,
            ),
        ];
        for (l, gone) in cases {
            assert_eq!(
                holder_gone(&l, &me, &retry, &super::super::RecordCalls::new(None))
                    .await
                    .is_some(),
                gone,
                "{l:?}"
            );
        }
    }
}
