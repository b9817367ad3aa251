//! `kube-elector`: parse the configuration, wire the pieces, run until SIGTERM, release, exit.
//!
//! The only place errors become exit codes: 2 for configuration the process cannot run with
//! (before anything touches the API server), 1 for a failure at run time, 0 after a clean
//! shutdown. The election runs on its own thread and runtime, so a flood of probes or scrapes on
//! the HTTP runtime cannot delay a renewal.
//!
//! Shutdown order (SIGTERM or SIGINT): the election steps down and publishes it (`/readyz`
//! answers 503 from then on; the HTTP surface keeps serving until the election has finished),
//! the leader file is removed, the pod label reset and the EndpointSlice emptied (if it names this
//! pod), and only when all are done and
//! `--release-delay` has passed since the step-down is the release written; all within
//! `--shutdown-timeout`. With the proxy, the release also waits (at most half the shutdown
//! timeout) until the requests passed to this pod's application have finished; the proxy keeps
//! listening until the election has finished (requests arriving meanwhile wait for the new
//! leader), then lets open requests finish within the shutdown timeout.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use kube_elector::config::{Config, LogFormat};
use kube_elector::metrics::{AppHealthMetrics, ElectionMetrics};
use kube_elector::{Candidacy, Elector, Lock, ReleaseGate};
use kube_elector::{
    app_health, endpoint_slice, exec, http, leader_file, pod_deletion_cost, pod_label, process_metrics, proxy,
};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

fn main() -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let config = match Config::load(std::env::args_os(), &env) {
        Ok(config) => config,
        Err(error) => {
            let code = error.exit_code();
            if code == 0 {
                // Help or version; a closed pipe (`--help | head`) is not an error.
                let _ = write!(std::io::stdout(), "{error}");
            } else {
                eprintln!("kube-elector: {error}");
            }
            return ExitCode::from(code);
        }
    };
    if config.print_config {
        let _ = write!(std::io::stdout(), "{}", config.render());
        return ExitCode::SUCCESS;
    }
    init_tracing(&config);
    match run(config) {
        Ok(None) => ExitCode::SUCCESS,
        // Exec mode, `--on-child-exit exit`: the command's own code.
        Ok(Some(code)) => ExitCode::from(code),
        Err(Failure::Config(error)) => {
            eprintln!("kube-elector: {error:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            tracing::error!("{error:#}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// The configuration cannot work (e.g. an unusable kubeconfig): exit 2.
    Config(anyhow::Error),
    /// Something failed while running: exit 1.
    Runtime(anyhow::Error),
}

fn init_tracing(config: &Config) {
    // kube's client logs every failed request at ERROR; the election reports the same failure
    // once, with context, so that logger is off unless RUST_LOG asks for it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{},kube_client::client::builder=off", config.log_level))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn run(config: Config) -> Result<Option<u8>, Failure> {
    let http_runtime = tokio::runtime::Builder::new_multi_thread()
        // The proxy's traffic gets a second thread, so a probe is not queued behind it.
        .worker_threads(if config.proxy_listen.is_some() { 2 } else { 1 })
        .thread_name("http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")
        .map_err(Failure::Runtime)?;
    let election_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the election runtime")
        .map_err(Failure::Runtime)?;

    // Signal handlers first: a SIGTERM that arrives during start-up must still mean "shut
    // down cleanly", never the default action of dying on the spot.
    let signals = {
        let _runtime = http_runtime.enter();
        ShutdownSignals::install()
            .context("installing signal handlers")
            .map_err(Failure::Runtime)?
    };
    let client = election_runtime
        .block_on(kube_client(&config))
        .map_err(Failure::Config)?;

    let mut registry = Registry::default();
    let metrics = ElectionMetrics::register(&mut registry, &config.election, &config.namespace);
    process_metrics::register(&mut registry);
    let app_health_metrics = config
        .app_health
        .is_some()
        .then(|| AppHealthMetrics::register(&mut registry, &config.election, &config.namespace));
    let exec_parts = exec_parts(&config, &mut registry);
    let proxy_metrics = config
        .proxy_listen
        .is_some()
        .then(|| proxy::ProxyMetrics::register(&mut registry, &config.election, &config.namespace));
    let slice_writer = endpoint_slice::SliceWriter::from_config(&config, &client, &metrics, &mut registry);
    let registry = Arc::new(registry);

    // The election is built through the library's public API; its state channel exists from
    // here so the outputs below can follow it before the elector is built.
    let elector_builder = Elector::builder(
        client.clone(),
        Lock::of_kind(
            config.lock_type,
            config.namespace.clone(),
            config.election.clone(),
        ),
        config.identity.clone(),
    )
    .timing(
        config.timing.lease_duration,
        config.timing.renew_deadline,
        config.timing.retry_period,
    )
    .follow(config.follow)
    .release_on_shutdown(config.release_on_shutdown)
    .shutdown_timeout(config.shutdown_timeout)
    .release_delay(config.release_delay)
    .events(config.events)
    .metrics(metrics.clone());
    let elector_builder = match &config.pod_uid {
        Some(uid) => elector_builder.pod_uid(uid.clone()),
        None => elector_builder,
    };
    let elector_builder = match (&config.proxy_listen, &config.advertise_address) {
        (Some(_), Some(address)) => elector_builder.advertise_address(address.clone()),
        _ => elector_builder,
    };
    let state_rx = elector_builder.subscribe();
    let child = exec_parts.map(|(spec, metrics)| {
        let (status_tx, status_rx) = exec::status_channel();
        (
            exec::Supervisor::new(spec, state_rx.clone(), metrics, status_tx),
            status_rx,
        )
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    // The HTTP surface outlives the election, so /readyz answers 503 (not a refused connection)
    // while the release waits.
    let (election_done_tx, election_done_rx) = watch::channel(false);

    // The proxy is bound before the HTTP surface: once /readyz answers, the proxy listens.
    let proxy = match (config.proxy_listen, config.proxy_upstream, proxy_metrics) {
        (Some(listen), Some(upstream), Some(proxy_metrics)) => {
            let settings = proxy::Settings {
                identity: config.identity.clone(),
                upstream,
                queue_timeout: config.proxy_queue_timeout,
                queue_limit: config.proxy_queue_limit,
            };
            let bound = http_runtime
                .block_on(proxy::bind(listen, settings, state_rx.clone(), proxy_metrics))
                .with_context(|| format!("binding the proxy listener on {listen} (--proxy-listen)"))
                .map_err(Failure::Config)?;
            tracing::info!(
                proxy = %bound.local_addr(),
                %upstream,
                advertised = config.advertise_address.as_deref().unwrap_or_default(),
                "proxying requests to the leader's application"
            );
            Some(bound)
        }
        _ => None,
    };
    // The HTTP surface and the leader file live on the HTTP runtime.
    let server = http_runtime
        .block_on(http::bind(config.http))
        .with_context(|| format!("binding the HTTP listener on {} (--http)", config.http))
        .map_err(Failure::Config)?;
    tracing::info!(address = %server.local_addr(), "serving /readyz, /livez, /metrics and status");
    let (label_status_tx, label_status_rx) = pod_label::status_channel();
    // Whether the leader file may still name this process; a withdrawn leader's release waits
    // until it does not.
    let (file_status_tx, file_status_rx) = watch::channel(false);
    // With --app-health this process stands only while its application is healthy.
    let probe = config.app_health.clone().map(|url| app_health::Probe {
        url,
        period: config.app_health_period,
        timeout: config.app_health_timeout,
        failure_threshold: config.app_health_failure_threshold,
        success_threshold: config.app_health_success_threshold,
    });
    let (candidacy, app_health_rx) = match (probe, app_health_metrics) {
        (Some(probe), Some(app_metrics)) => {
            let (candidacy_tx, candidacy) = Candidacy::pair(false);
            let (health_tx, health_rx) = app_health::channel(&probe);
            http_runtime.spawn(app_health::run(
                probe,
                health_tx,
                candidacy_tx,
                app_metrics,
                stopped(stop_rx.clone()),
            ));
            (candidacy, Some(health_rx))
        }
        _ => (Candidacy::always(), None),
    };
    // A leader withdrawn from candidacy releases once the pod label and the leader file say
    // follower, and (exec mode) its command has exited.
    let mut step_down_gate =
        ReleaseGate::while_false(label_status_rx.clone()).and(ReleaseGate::while_false(file_status_rx));
    if let Some((_, child_status_rx)) = &child {
        let alive = http_runtime.block_on(async { exec::alive(child_status_rx.clone()) });
        step_down_gate = step_down_gate.and(ReleaseGate::while_false(alive));
    }
    let serving_locally = proxy.as_ref().map(proxy::Proxy::serving_locally);
    if let Some(busy) = &serving_locally {
        step_down_gate = step_down_gate.and(ReleaseGate::while_false(busy.clone()));
    }
    let mut context = http::Context::new(state_rx.clone(), registry, metrics.clone(), &config)
        .with_pod_label(label_status_rx);
    if let Some(health) = app_health_rx {
        context = context.with_app_health(health);
    }
    if let Some((_, child_status_rx)) = &child {
        context = context.with_child(child_status_rx.clone());
    }
    if proxy.is_some() {
        context = context.with_proxy();
    }
    let request_stop = stop_tx.clone();
    let (slice_writer, context) = match slice_writer {
        Some((writer, status)) => (Some(writer), context.with_endpoint_slice(status)),
        None => (None, context),
    };
    let proxy_task = proxy.map(|proxy| {
        // The proxy listens until the election is done (queued requests still find the
        // successor), then drains until the shutdown timeout, counted from the stop.
        let (stop, done, budget) = (stop_rx.clone(), election_done_rx.clone(), config.shutdown_timeout);
        http_runtime.spawn(proxy.serve(async move {
            tokio::select! {
                () = stopped(stop) => {}
                () = stopped(done.clone()) => {}
            }
            let deadline = tokio::time::Instant::now() + budget;
            stopped(done).await;
            deadline
        }))
    });
    let http_task = http_runtime.spawn(server.serve(context, stopped(election_done_rx)));
    let leader_file_task = config.leader_file.clone().map(|path| {
        http_runtime.spawn(leader_file::run_reporting(
            path,
            state_rx.clone(),
            kube_elector::clock::WallClock::system(),
            stopped(stop_rx.clone()),
            Some(file_status_tx),
        ))
    });
    let signals = http_runtime.spawn(async move {
        let signal = signals.recv().await;
        tracing::info!(signal, "shutting down");
        let _ = stop_tx.send(true);
    });

    // The election (and the API work that follows it) lives on its own runtime and thread.
    let (gate_opener, release_gate) = ReleaseGate::pair();
    let elector = elector_builder
        .release_gate(release_gate)
        .candidacy(candidacy)
        .step_down_gate(step_down_gate)
        .build()
        .context("election settings")
        .map_err(Failure::Config)?;
    let pod_label = match (&config.pod_label, &config.pod_name) {
        (Some(key), Some(pod)) => Some(
            pod_label::PodLabel::new(
                client.clone(),
                &config.namespace,
                pod,
                key,
                metrics.clone(),
                config.timing.renew_deadline,
            )
            .reporting_to(label_status_tx),
        ),
        _ => None,
    };
    let deletion_cost = match (config.pod_deletion_cost, &config.pod_name) {
        (true, Some(pod)) => Some(pod_deletion_cost::PodDeletionCost::new(
            client.clone(),
            &config.namespace,
            pod,
            metrics.clone(),
            config.timing.renew_deadline,
        )),
        _ => None,
    };
    let retry = config.timing.retry_period;
    let shutdown_timeout = config.shutdown_timeout;
    let exec_outcome = election_runtime.block_on(async {
        let labeller =
            pod_label.map(|label| tokio::spawn(label.run(state_rx.clone(), retry, stopped(stop_rx.clone()))));
        let slice_task = slice_writer
            .map(|writer| tokio::spawn(writer.run(state_rx.clone(), retry, stopped(stop_rx.clone()))));
        let cost_task = deletion_cost
            .map(|cost| tokio::spawn(cost.run(state_rx.clone(), retry, stopped(stop_rx.clone()))));
        // Exec mode: the command is spawned from this runtime, which runs on the main thread
        // (the parent-death signal follows the thread that forks; see `exec::process`).
        let supervisor = child.map(|(supervisor, _)| {
            tokio::spawn(supervisor.run(stopped(stop_rx.clone()), move || {
                let _ = request_stop.send(true);
            }))
        });
        // The release waits until the command has exited (exec mode), the leader file is gone,
        // the label says follower and the EndpointSlice no longer names this pod (or emptying it
        // failed or timed out): each task ends only after its last update at shutdown.
        let stop_rx_outputs = stop_rx.clone();
        let outputs = async move {
            let mut exec_outcome = None;
            if let Some(supervisor) = supervisor {
                exec_outcome = Some(supervisor.await);
            }
            if let Some(task) = slice_task {
                let _ = task.await;
            }
            if let Some(task) = cost_task {
                let _ = task.await;
            }
            if let Some(task) = leader_file_task {
                let _ = task.await;
            }
            if let Some(labeller) = labeller {
                let _ = labeller.await;
            }
            // Requests passed to the application finish before the release, within half the
            // shutdown timeout (the other half is the release's).
            if let Some(mut busy) = serving_locally {
                stopped(stop_rx_outputs).await;
                let drained = busy.wait_for(|busy| !*busy);
                if tokio::time::timeout(shutdown_timeout / 2, drained).await.is_err() {
                    tracing::warn!("releasing while requests passed to the application are still open");
                }
            }
            gate_opener.open();
            exec_outcome
        };
        let election = elector.run(stopped(stop_rx.clone()));
        tokio::join!(election, outputs).1
    });
    let exit_code = match exec_outcome {
        Some(Ok(Ok(exec::Outcome::ChildExited(exit)))) => Some(exit.shell_code()),
        Some(Ok(Ok(exec::Outcome::Shutdown))) | None => None,
        Some(Ok(Err(error))) => {
            return Err(Failure::Runtime(
                anyhow::Error::new(error).context("supervising the command"),
            ));
        }
        Some(Err(error)) => {
            return Err(Failure::Runtime(
                anyhow::Error::new(error).context("the command's supervisor failed"),
            ));
        }
    };

    // The election has let go; stop serving.
    let _ = election_done_tx.send(true);
    http_runtime.block_on(async {
        signals.abort();
        if let Some(task) = proxy_task {
            let _ = task.await;
        }
        match http_task.await {
            Ok(Ok(())) => Ok(exit_code),
            Ok(Err(error)) => Err(Failure::Runtime(
                anyhow::Error::new(error).context("serving HTTP"),
            )),
            Err(error) => Err(Failure::Runtime(
                anyhow::Error::new(error).context("the HTTP task failed"),
            )),
        }
    })
}

/// Builds the API client from `--kubeconfig`, or from the in-cluster service account.
async fn kube_client(config: &Config) -> anyhow::Result<kube::Client> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).with_context(|| {
                format!(
                    "reading kubeconfig {} (--kubeconfig / KUBECONFIG)",
                    path.display()
                )
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("using kubeconfig {} (--kubeconfig / KUBECONFIG)", path.display()))?
        }
        None => kube::Config::incluster().context(
            "no --kubeconfig (or KUBECONFIG) given and the in-cluster service account is not usable; \
             run inside a pod or pass --kubeconfig",
        )?,
    };
    // The election loop is the retry policy: one attempt is one request, paced by the retry
    // period and bounded by the renew deadline, and every request shows in the metrics.
    let mut kube_config = kube_config;
    kube_config.default_retry = false;
    kube::Client::try_from(kube_config).context("building the Kubernetes client")
}

/// Completes once shutdown has been signalled.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// SIGTERM and SIGINT, listened to from start-up on.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either and names it.
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Exec mode's parts when a command is given: what to run, and its metrics (registered in
/// `registry`).
fn exec_parts(config: &Config, registry: &mut Registry) -> Option<(exec::ChildSpec, exec::ChildMetrics)> {
    let (program, args) = config.command.split_first()?;
    let spec = exec::ChildSpec {
        program: program.clone(),
        args: args.to_vec(),
        identity: config.identity.clone(),
        election: config.election.clone(),
        namespace: config.namespace.clone(),
        grace: config.child_grace,
        lease_duration: config.timing.lease_duration,
        renew_deadline: config.timing.renew_deadline,
        on_exit: config.on_child_exit,
    };
    let metrics = exec::ChildMetrics::register(registry, &config.election, &config.namespace);
    Some((spec, metrics))
}
