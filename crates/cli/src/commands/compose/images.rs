//! Service images: `pull_policy` for `up`/`run`, `compose pull` and
//! `compose push`, with Docker Compose v2's semantics (`pkg/compose/pull.go`,
//! `push.go`, `create.go` of docker/compose, read for behaviour):
//!
//! - `up`/`run` ([`ensure_images`]): `always` pulls before creating, `missing`
//!   / `if_not_present` (the default) pulls a missing image, or builds it when
//!   the service has `build:`, `never` never pulls (a missing image without
//!   `build:` is an error), `build` always builds. `--build` builds every
//!   service with `build:`; `--no-build` builds nothing. A service with
//!   `build:` and `image:` whose image is missing is built, not pulled first
//!   (as docker-compose 1.29 does), so nothing is fetched that the project
//!   builds itself.
//! - `pull`: skips services without an `image:` of their own (only
//!   `build:`), those whose policy is `never` or `build`, those whose policy
//!   is `missing` and whose image is present, with `--ignore-buildable` those
//!   with `build:`, and an image another service already pulls. A failed pull
//!   of a buildable service is a warning naming what to build; of another
//!   service an error unless `--ignore-pull-failures`.
//! - `push`: pushes the `image:` of services with `build:` and an `image:`;
//!   the others are skipped.

use clap::Parser;
use tether_compose::model::PullPolicy;
use tether_compose::Project;

use super::progress::{Kind, Progress};
use super::{build_services, BuildArgs};
use crate::client::{path_escape, Client};
use crate::commands::registry::{finish_quietly, start_pull, start_push};
use crate::errln;
use crate::error::{CliError, Result};
use crate::reference;

/// `tether compose pull`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "pull",
    override_usage = "tether compose pull [OPTIONS] [SERVICE...]",
    about = "Pull service images"
)]
pub struct PullArgs {
    /// Pull without printing progress information
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Pull what it can and ignores images with pull failures
    #[arg(long = "ignore-pull-failures")]
    pub ignore_pull_failures: bool,
    /// Ignore images that can be built
    #[arg(long = "ignore-buildable")]
    pub ignore_buildable: bool,
    /// Also pull services declared as dependencies
    #[arg(long = "include-deps")]
    pub include_deps: bool,
    /// SERVICE...
    pub services: Vec<String>,
}

/// `tether compose push`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "push",
    override_usage = "tether compose push [OPTIONS] [SERVICE...]",
    about = "Push service images"
)]
pub struct PushArgs {
    /// Push what it can and ignores images with push failures
    #[arg(long = "ignore-push-failures")]
    pub ignore_push_failures: bool,
    /// Push without printing progress information
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// SERVICE...
    pub services: Vec<String>,
}

/// What `up`/`run` were told about images.
#[derive(Debug, Clone, Default)]
pub struct ImageOpts {
    /// `--build`: build every selected service that has `build:`.
    pub build: bool,
    /// `--no-build`: build nothing.
    pub no_build: bool,
    /// `--pull always|missing|never`: replaces every service's `pull_policy`.
    pub pull: Option<String>,
}

/// Whether the daemon has image `name` (`GET /images/{name}/json`).
async fn present(client: &Client, name: &str) -> Result<bool> {
    match client
        .get(&format!("/images/{}/json", path_escape(name)))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Pulls `image` for `service` (`POST /images/create`), shown as one
/// `Service NAME  Pulling` / `Pulled` step.
async fn pull_one(client: &Client, service: &str, image: &str, progress: Progress) -> Result<()> {
    let r = reference::parse_named(image)
        .map_err(|e| CliError::msg(format!("service {service:?}: image {image:?}: {e}")))?;
    progress.begin(Kind::Service, service, "Pulling");
    let res = match start_pull(client, &r, None).await {
        Ok(resp) => finish_quietly(resp).await,
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => {
            progress.done(Kind::Service, service, "Pulled");
            Ok(())
        }
        Err(e) => {
            progress.failed(Kind::Service, service, "Error");
            Err(e)
        }
    }
}

/// Parses `--pull` of `up`/`run`.
///
/// # Errors
/// A value other than `always`, `missing` or `never`.
fn pull_override(v: &str) -> Result<PullPolicy> {
    match v {
        "always" => Ok(PullPolicy::Always),
        "missing" | "if_not_present" => Ok(PullPolicy::Missing),
        "never" => Ok(PullPolicy::Never),
        _ => Err(CliError::msg(format!(
            "invalid --pull option {v:?}: expected always, missing or never"
        ))),
    }
}

/// Makes sure the images of `services` are there before `up`/`run` create
/// containers: pulls and builds them as their `pull_policy` (or `--pull`)
/// and `--build`/`--no-build` say (see the module doc). Pulls come first,
/// then builds.
///
/// # Errors
/// A pull that fails for a service that cannot be built, a build failure,
/// or a missing image that may not be pulled (`never`) nor built, each
/// naming the service and image.
pub async fn ensure_images(
    client: &Client,
    p: &Project,
    services: &[String],
    o: &ImageOpts,
    progress: Progress,
) -> Result<()> {
    if o.build && o.no_build {
        return Err(CliError::msg("--build and --no-build are incompatible"));
    }
    let forced = o.pull.as_deref().map(pull_override).transpose()?;
    let mut to_build: Vec<String> = Vec::new();
    let mut pulled: Vec<String> = Vec::new();
    for s in services {
        let Some(svc) = p.services.get(s) else {
            continue;
        };
        let image = svc.image.clone().unwrap_or_default();
        let buildable = svc.build.is_some() && !o.no_build;
        let policy = match (forced, svc.pull_policy()) {
            (_, PullPolicy::Build) => PullPolicy::Build,
            (Some(f), _) => f,
            (None, pp) => pp,
        };
        if buildable && (o.build || policy == PullPolicy::Build) {
            to_build.push(s.clone());
            continue;
        }
        let has = present(client, &image).await?;
        let want_pull = match policy {
            PullPolicy::Always => !svc.image_implied,
            PullPolicy::Missing => !has && !buildable && !svc.image_implied,
            PullPolicy::Never | PullPolicy::Build => false,
        };
        if want_pull {
            if pulled.contains(&image) {
                continue;
            }
            match pull_one(client, s, &image, progress).await {
                Ok(()) => {
                    pulled.push(image.clone());
                    continue;
                }
                // An image that can be built is built when its pull fails.
                Err(e) if buildable && !has => {
                    errln!("WARN[0000] service {s:?}: pulling {image} failed ({e}); building it");
                }
                // A present image that can be built stays as it is.
                Err(_) if buildable => continue,
                Err(e) => {
                    return Err(CliError::msg(format!(
                        "service {s:?}: pulling image {image}: {e}"
                    )))
                }
            }
        } else if has {
            continue;
        }
        if buildable {
            to_build.push(s.clone());
        } else if policy == PullPolicy::Never || o.no_build {
            let why = if policy == PullPolicy::Never {
                "its pull_policy is never"
            } else {
                "--no-build was given"
            };
            return Err(CliError::msg(format!(
                "service {s:?}: image {image} is not present and {why}: pull it first (tether compose pull {s}) or build it"
            )));
        }
    }
    if !to_build.is_empty() {
        build_services(client, p, &to_build, &BuildArgs::default()).await?;
    }
    Ok(())
}

/// The services a pull/push acts on: all, or those named (with their
/// dependencies when `deps`), in the project's order.
fn selected(p: &Project, names: &[String], deps: bool) -> Result<Vec<String>> {
    for s in names {
        if !p.services.contains_key(s) {
            return Err(CliError::msg(format!("no such service: {s}")));
        }
    }
    if names.is_empty() {
        return Ok(p.services.keys().cloned().collect());
    }
    if deps {
        return tether_compose::plan::start_order(p, names)
            .map_err(|e| CliError::msg(e.to_string()));
    }
    Ok(p.services
        .keys()
        .filter(|s| names.contains(s))
        .cloned()
        .collect())
}

/// `tether compose pull [SERVICE...]`.
///
/// # Errors
/// An unknown service; a failed pull of a service that cannot be built
/// (unless `--ignore-pull-failures`).
pub async fn pull(client: &Client, p: &Project, a: &PullArgs, progress: Progress) -> Result<()> {
    let progress = if a.quiet {
        Progress::new("quiet")
    } else {
        progress
    };
    let services = selected(p, &a.services, a.include_deps)?;
    let mut pulling: Vec<(String, String)> = Vec::new();
    let mut must_build: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for s in &services {
        let svc = &p.services[s];
        let image = svc.image.clone().unwrap_or_default();
        if svc.image_implied || image.is_empty() {
            progress.done(Kind::Service, s, "Skipped - No image to be pulled");
            continue;
        }
        let policy = svc.pull_policy();
        if matches!(policy, PullPolicy::Never | PullPolicy::Build) {
            progress.done(Kind::Service, s, "Skipped");
            continue;
        }
        if svc.pull_policy.is_some()
            && policy == PullPolicy::Missing
            && present(client, &image).await?
        {
            progress.done(
                Kind::Service,
                s,
                "Skipped - Image is already present locally",
            );
            continue;
        }
        if svc.build.is_some() && a.ignore_buildable {
            progress.done(Kind::Service, s, "Skipped - Image can be built");
            continue;
        }
        if let Some((other, _)) = pulling.iter().find(|(_, i)| *i == image) {
            let msg = format!("Skipped - Image is already being pulled by {other}");
            progress.done(Kind::Service, s, &msg);
            continue;
        }
        pulling.push((s.clone(), image.clone()));
        if let Err(e) = pull_one(client, s, &image, progress).await {
            if svc.build.is_some() {
                must_build.push(s.clone());
            } else if a.ignore_pull_failures {
                failures.push(format!("{s}: {e}"));
            } else {
                return Err(e);
            }
        }
    }
    for f in &failures {
        errln!("WARNING: pulling {f}");
    }
    if !must_build.is_empty() {
        errln!(
            "WARNING: Some service image(s) must be built from source by running:\n    tether compose build {}",
            must_build.join(" ")
        );
    }
    Ok(())
}

/// `tether compose push [SERVICE...]`.
///
/// # Errors
/// An unknown service; a failed push (unless `--ignore-push-failures`).
pub async fn push(client: &Client, p: &Project, a: &PushArgs, progress: Progress) -> Result<()> {
    let progress = if a.quiet {
        Progress::new("quiet")
    } else {
        progress
    };
    let services = selected(p, &a.services, false)?;
    for s in &services {
        let svc = &p.services[s];
        let image = svc.image.clone().unwrap_or_default();
        if svc.build.is_none() || svc.image_implied || image.is_empty() {
            progress.done(Kind::Service, s, "Skipped");
            continue;
        }
        let r = reference::parse_named(&image)
            .map_err(|e| CliError::msg(format!("service {s:?}: image {image:?}: {e}")))?;
        progress.begin(Kind::Service, s, "Pushing");
        let res = match start_push(client, &r).await {
            Ok(resp) => finish_quietly(resp).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => progress.done(Kind::Service, s, "Pushed"),
            Err(e) => {
                progress.failed(Kind::Service, s, "Error");
                if !a.ignore_push_failures {
                    return Err(CliError::msg(format!(
                        "service {s:?}: pushing {image}: {e}"
                    )));
                }
                errln!("WARNING: pushing {s}: {e}");
            }
        }
    }
    Ok(())
}
