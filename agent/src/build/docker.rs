//! The Docker executor's engine side: one container per job, through the
//! Docker Engine API (Docker Desktop, OrbStack, colima, podman).
//!
//! The job's directory (workspace and temp) is bind-mounted at the same path,
//! so paths the step loop in [`super::runner`] hands out mean the same inside
//! and outside, and `actions/checkout` runs on the host into the mount. The
//! container only idles (`tail -f /dev/null`, as GitHub does); each step is a
//! `docker exec`. Containers carry labels so that a restarted agent can remove
//! what a crashed one left behind. This module never runs anything on the host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateImageOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Label with the build id on every job container.
pub const BUILD_LABEL: &str = "hangar.build";
/// Label with the job id on every job container.
pub const JOB_LABEL: &str = "hangar.job";
/// Label with the agent's data dir: several agents may share one engine, and
/// each removes only its own leftovers.
pub const DATA_LABEL: &str = "hangar.data_dir";

/// How long the engine gets to answer a ping before it counts as not running.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What to tell a user whose engine is not running.
const START_ENGINE: &str = "start Docker Desktop, OrbStack or colima (`colima start`), or set DOCKER_HOST to a running engine's socket (e.g. unix:///var/run/docker.sock)";

/// Connects to the engine `DOCKER_HOST` names, or else to the first socket of
/// Docker, Docker Desktop, OrbStack or colima that exists, and checks that it
/// answers.
pub async fn engine() -> Result<Docker, String> {
    let (docker, place) = match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => (
            Docker::connect_with_host(&host)
                .map_err(|e| format!("DOCKER_HOST={host} cannot be used: {e}; {START_ENGINE}"))?,
            format!("DOCKER_HOST={host}"),
        ),
        _ => {
            let socket = sockets().into_iter().find(|s| s.exists()).ok_or_else(|| {
                format!(
                    "no Docker engine socket found (looked for {}); {START_ENGINE}",
                    sockets()
                        .iter()
                        .map(|s| s.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let url = format!("unix://{}", socket.display());
            (
                Docker::connect_with_unix(&url, 120, bollard::API_DEFAULT_VERSION)
                    .map_err(|e| format!("cannot use {url}: {e}; {START_ENGINE}"))?,
                url,
            )
        }
    };
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(format!(
            "no Docker engine is reachable at {place} ({e}); {START_ENGINE}"
        )),
        Err(_) => Err(format!(
            "the Docker engine at {place} did not answer within {}s; {START_ENGINE}",
            PING_TIMEOUT.as_secs()
        )),
    }
}

/// The usual engine sockets: Docker on Linux, then Docker Desktop, OrbStack and
/// colima on a Mac.
fn sockets() -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        for rel in [
            ".docker/run/docker.sock",
            ".orbstack/run/docker.sock",
            ".colima/default/docker.sock",
        ] {
            found.push(home.join(rel));
        }
    }
    found
}

/// Removes the containers a previous run of the agent with this data dir left
/// behind (killed mid-job). Returns how many it removed.
pub async fn remove_leftovers(data_dir: &Path) -> Result<usize, String> {
    let docker = engine().await?;
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{DATA_LABEL}={}", data_dir.display())],
    )]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("cannot list containers: {e}"))?;
    let mut removed = 0;
    for id in list.into_iter().filter_map(|c| c.id) {
        match docker.remove_container(&id, Some(force_remove())).await {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("cannot remove leftover container {id}: {e}"),
        }
    }
    Ok(removed)
}

fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    }
}

/// What a job's container is made from.
pub struct Spec<'a> {
    pub image: &'a str,
    /// The job's directory, mounted at the same path; steps start in `workspace`.
    pub dir: &'a Path,
    pub workspace: &'a Path,
    pub labels: HashMap<String, String>,
    /// `container.env`, rendered.
    pub env: Vec<(String, String)>,
    /// `container.options`, rendered.
    pub options: Option<&'a str>,
    pub volumes: &'a [String],
    pub ports: &'a [String],
    /// `container.credentials` username and password, rendered.
    pub credentials: Option<(String, String)>,
    /// The job's cancel: a pull (which may take minutes) stops on it.
    pub cancel: &'a CancellationToken,
}

/// A job's running container (a clone is a handle to the same one).
#[derive(Clone)]
pub struct Container {
    docker: Docker,
    id: String,
    /// The container's own `PATH`, which `GITHUB_PATH` additions go in front of.
    pub path: String,
    /// Whether the image has bash (steps without `shell:` fall back to sh).
    pub bash: bool,
}

impl Container {
    /// Pulls the image if it is missing, then creates and starts the container.
    /// `log` receives progress lines for the job log.
    pub async fn start(spec: Spec<'_>, log: &(dyn Fn(&str) + Sync)) -> Result<Self, String> {
        let options = parse_options(spec.options.unwrap_or_default())?;
        if !spec.ports.is_empty() {
            return Err("container.ports is not supported: a job container publishes no ports (remove `ports:`)".into());
        }
        let mut mounts = vec![Mount {
            source: Some(spec.dir.display().to_string()),
            target: Some(spec.dir.display().to_string()),
            typ: Some(MountType::BIND),
            ..Default::default()
        }];
        for volume in spec.volumes {
            mounts.push(parse_volume(volume)?);
        }
        let docker = engine().await?;
        tokio::select! {
            pulled = pull_if_missing(&docker, spec.image, spec.credentials, log) => pulled?,
            _ = spec.cancel.cancelled() => return Err(format!("cancelled while pulling {}", spec.image)),
        }
        let env: Vec<String> = spec
            .env
            .iter()
            .chain(options.env.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            entrypoint: Some(vec!["tail".into()]),
            cmd: Some(vec!["-f".into(), "/dev/null".into()]),
            env: Some(env),
            working_dir: Some(spec.workspace.display().to_string()),
            labels: Some(spec.labels),
            user: options.user,
            hostname: options.hostname,
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: options.network,
                privileged: Some(options.privileged),
                nano_cpus: options.nano_cpus,
                memory: options.memory,
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(None, body)
            .await
            .map_err(|e| format!("cannot create a container from {}: {e}", spec.image))?;
        let mut container = Container {
            docker,
            id: created.id,
            path: String::new(),
            bash: false,
        };
        if let Err(e) = container.docker.start_container(&container.id, None).await {
            container.remove().await;
            return Err(format!("cannot start the {} container: {e}", spec.image));
        }
        let inspected = container
            .docker
            .inspect_container(&container.id, None)
            .await
            .map_err(|e| format!("cannot inspect the job container: {e}"))?;
        container.path = inspected
            .config
            .and_then(|c| c.env)
            .unwrap_or_default()
            .iter()
            .find_map(|v| v.strip_prefix("PATH=").map(str::to_owned))
            .unwrap_or_else(|| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            });
        container.bash = container.probe(&["bash", "-c", "true"]).await == Some(0);
        log(&format!(
            "Started container {} from {}",
            &container.id[..container.id.len().min(12)],
            spec.image
        ));
        Ok(container)
    }

    /// Starts `argv` in the container; its output arrives line by line on the
    /// returned channel, which closes when the process ends. Returns the exec id.
    pub async fn exec(
        &self,
        argv: Vec<String>,
        env: &std::collections::BTreeMap<String, String>,
        dir: &Path,
    ) -> Result<(String, mpsc::Receiver<Vec<u8>>), String> {
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(argv),
                    env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    working_dir: Some(dir.display().to_string()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("cannot start the step in the container: {e}"))?;
        let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| format!("cannot start the step in the container: {e}"))?
        else {
            return Err("the engine did not attach to the step's output".into());
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>(256);
        tokio::spawn(async move {
            // stdout and stderr each carry partial lines; keep them apart.
            let mut pending: [Vec<u8>; 2] = Default::default();
            while let Some(Ok(chunk)) = output.next().await {
                let (which, bytes) = match chunk {
                    bollard::container::LogOutput::StdErr { message } => (1, message),
                    other => (0, other.into_bytes()),
                };
                let buf = &mut pending[which];
                buf.extend_from_slice(&bytes);
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
            for rest in pending.into_iter().filter(|p| !p.is_empty()) {
                let _ = tx.send(rest).await;
            }
        });
        Ok((exec.id, rx))
    }

    /// The exit status of an exec whose output has ended.
    pub async fn exit_code(&self, exec: &str) -> Result<i32, String> {
        // The engine may record the exit a moment after the stream closes.
        for _ in 0..100 {
            let inspected = self
                .docker
                .inspect_exec(exec)
                .await
                .map_err(|e| format!("cannot read the step's exit status: {e}"))?;
            if inspected.running != Some(true)
                && let Some(code) = inspected.exit_code
            {
                return Ok(code as i32);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("the engine did not report the step's exit status".into())
    }

    /// Stops every process in the container but its idle PID 1 (the step and
    /// anything it left in the background), so later steps can still run; if
    /// that fails, kills the container.
    pub async fn stop_processes(&self) {
        if self.probe(&["sh", "-c", "kill -9 -1"]).await.is_none() {
            let _ = self
                .docker
                .kill_container(
                    &self.id,
                    Some(KillContainerOptions {
                        signal: "SIGKILL".into(),
                    }),
                )
                .await;
        }
    }

    /// Runs a short command to its end; its exit status, if it ran.
    async fn probe(&self, argv: &[&str]) -> Option<i32> {
        let argv = argv.iter().map(|a| a.to_string()).collect();
        let (exec, mut lines) = self
            .exec(argv, &Default::default(), Path::new("/"))
            .await
            .ok()?;
        while lines.recv().await.is_some() {}
        self.exit_code(&exec).await.ok()
    }

    /// Removes the container and its anonymous volumes.
    pub async fn remove(&self) {
        if let Err(e) = self
            .docker
            .remove_container(&self.id, Some(force_remove()))
            .await
        {
            tracing::warn!("cannot remove job container {}: {e}", self.id);
        }
    }
}

async fn pull_if_missing(
    docker: &Docker,
    image: &str,
    credentials: Option<(String, String)>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    log(&format!("Pulling image {image}"));
    let (from_image, tag) = split_tag(image);
    let credentials = credentials.map(|(username, password)| bollard::auth::DockerCredentials {
        username: Some(username),
        password: Some(password),
        ..Default::default()
    });
    let mut pull = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(from_image.to_owned()),
            tag: tag.map(str::to_owned),
            ..Default::default()
        }),
        None,
        credentials,
    );
    let mut failure = None;
    while let Some(item) = pull.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(detail);
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    if failure.is_none() && docker.inspect_image(image).await.is_err() {
        failure = Some("the engine reported no error, yet the image is not there".into());
    }
    match failure {
        None => Ok(()),
        Some(why) => Err(format!(
            "cannot pull image {image}: {why}. If this machine cannot reach the image's registry, put the image on it yourself (`docker pull {image}` where a registry is reachable, then `docker save`/`docker load`, or build it locally), or map the runs-on label to an image you have with the docker_images setting"
        )),
    }
}

/// `name[:tag]` → (name, tag); digests (`@sha256:...`) stay in the name.
fn split_tag(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (image, Some("latest")),
    }
}

/// `SOURCE:TARGET[:ro|rw]`: an absolute source is a bind mount, any other a
/// named volume.
fn parse_volume(volume: &str) -> Result<Mount, String> {
    let bad = || {
        format!(
            "container volume {volume:?} is not valid: use SOURCE:TARGET or SOURCE:TARGET:ro, with an absolute TARGET"
        )
    };
    let parts: Vec<&str> = volume.split(':').collect();
    let (source, target, read_only) = match parts[..] {
        [s, t] => (s, t, false),
        [s, t, "ro"] => (s, t, true),
        [s, t, "rw"] => (s, t, false),
        _ => return Err(bad()),
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(bad());
    }
    Ok(Mount {
        source: Some(source.to_owned()),
        target: Some(target.to_owned()),
        typ: Some(if source.starts_with('/') {
            MountType::BIND
        } else {
            MountType::VOLUME
        }),
        read_only: Some(read_only),
        ..Default::default()
    })
}

/// The `container.options` this executor supports.
#[derive(Debug, Default, PartialEq)]
struct Options {
    user: Option<String>,
    hostname: Option<String>,
    network: Option<String>,
    privileged: bool,
    nano_cpus: Option<i64>,
    memory: Option<i64>,
    env: Vec<(String, String)>,
}

const MAX_OPTIONS_LEN: usize = 4096;
const SUPPORTED_OPTIONS: &str =
    "--user/-u, --hostname/-h, --network/--net, --privileged, --cpus, --memory/-m, --env/-e";

/// Parses `docker create` options from `container.options` (whitespace
/// separated, `--flag value` or `--flag=value`).
fn parse_options(text: &str) -> Result<Options, String> {
    if text.len() > MAX_OPTIONS_LEN {
        return Err(format!(
            "container.options is longer than {MAX_OPTIONS_LEN} bytes"
        ));
    }
    let mut options = Options::default();
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (word, None),
        };
        if matches!(flag, "--privileged") {
            options.privileged = inline.as_deref().is_none_or(|v| v == "true");
            continue;
        }
        let known = matches!(
            flag,
            "--user"
                | "-u"
                | "--hostname"
                | "-h"
                | "--network"
                | "--net"
                | "--cpus"
                | "--memory"
                | "-m"
                | "--env"
                | "-e"
        );
        if !known {
            return Err(format!(
                "container option {flag:?} is not supported; supported: {SUPPORTED_OPTIONS}"
            ));
        }
        let value = match inline {
            Some(v) => v,
            None => words
                .next()
                .ok_or_else(|| format!("container option {flag} needs a value"))?
                .to_owned(),
        };
        match flag {
            "--user" | "-u" => options.user = Some(value),
            "--hostname" | "-h" => options.hostname = Some(value),
            "--network" | "--net" => options.network = Some(value),
            "--cpus" => {
                let cpus: f64 = value
                    .parse()
                    .ok()
                    .filter(|c: &f64| c.is_finite() && *c > 0.0 && *c <= 1024.0)
                    .ok_or_else(|| format!("--cpus {value:?} is not a number of CPUs"))?;
                options.nano_cpus = Some((cpus * 1e9) as i64);
            }
            "--memory" | "-m" => options.memory = Some(parse_bytes(&value)?),
            _ => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("container option {flag} {value:?} needs NAME=VALUE"))?;
                options.env.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    Ok(options)
}

/// `512m`, `2g`, `1024k` or a number of bytes.
fn parse_bytes(value: &str) -> Result<i64, String> {
    let lower = value.to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 1i64 << 10),
        Some((i, 'm')) => (&lower[..i], 1 << 20),
        Some((i, 'g')) => (&lower[..i], 1 << 30),
        _ => (lower, 1),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("--memory {value:?} is not a size like 512m or 2g"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_cover_the_supported_flags() {
        let o =
            parse_options("--user 1000 --cpus=1.5 -m 512m -e A=b --privileged --net host").unwrap();
        assert_eq!(o.user.as_deref(), Some("1000"));
        assert_eq!(o.nano_cpus, Some(1_500_000_000));
        assert_eq!(o.memory, Some(512 << 20));
        assert_eq!(o.env, vec![("A".to_owned(), "b".to_owned())]);
        assert!(o.privileged);
        assert_eq!(o.network.as_deref(), Some("host"));
        let err = parse_options("--cap-add SYS_ADMIN").unwrap_err();
        assert!(
            err.contains("--cap-add") && err.contains("supported"),
            "{err}"
        );
        assert!(
            parse_options("--user")
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse_options("-m lots").is_err());
        assert_eq!(parse_options("").unwrap(), Options::default());
    }

    #[test]
    fn volumes_and_tags() {
        let m = parse_volume("/data:/data:ro").unwrap();
        assert_eq!((m.typ, m.read_only), (Some(MountType::BIND), Some(true)));
        assert_eq!(
            parse_volume("cache:/cache").unwrap().typ,
            Some(MountType::VOLUME)
        );
        assert!(parse_volume("/data").is_err());
        assert!(parse_volume("a:relative").is_err());
        assert_eq!(
            split_tag("localhost/busybox:latest"),
            ("localhost/busybox", Some("latest"))
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", Some("latest"))
        );
        assert_eq!(split_tag("ubuntu"), ("ubuntu", Some("latest")));
        assert_eq!(split_tag("a@sha256:00"), ("a@sha256:00", None));
    }

    proptest::proptest! {
        #[test]
        fn options_parse_or_fail_with_a_message(text in "(--?[a-z]{1,8}(=| )?[a-z0-9=.]{0,6} ?){0,8}") {
            match parse_options(&text) {
                Ok(o) => proptest::prop_assert!(o.memory.is_none_or(|m| m > 0)),
                Err(e) => proptest::prop_assert!(!e.is_empty()),
            }
        }

        #[test]
        fn volumes_parse_or_fail_with_a_message(text in "[a-z/:]{0,20}") {
            if let Ok(m) = parse_volume(&text) {
                proptest::prop_assert!(m.target.is_some_and(|t| t.starts_with('/')));
            }
        }
    }
}
