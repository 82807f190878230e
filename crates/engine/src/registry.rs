//! Images from and to registries (`docker pull`, `docker push`): the registry client of
//! [`tether_image::registry`] over the engine's image store, with Docker's `pull` and
//! `push` events; and the registry's own questions: credentials (`docker login`), a
//! reference's manifest (`docker manifest inspect`'s `/distribution`), search. Progress goes out as Docker's JSON progress messages on a channel;
//! errors found before any progress are returned, later ones end the stream with
//! `{"errorDetail": {"message": ...}, "error": ...}`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tether_image::registry::{self, AuthConfig, RegistryError, SearchResult};
use tether_image::Reference;
use tokio::sync::mpsc;

use crate::{Engine, EngineError};

/// The progress messages of a pull or push, in order; the channel closes when it ends.
pub type Progress = mpsc::UnboundedReceiver<Value>;

/// Docker's progress error message.
fn error_line(msg: &str) -> Value {
    json!({"errorDetail": {"message": msg}, "error": msg})
}

impl Engine {
    /// POST /images/create?fromImage=: pulls `reference` (for `platform`, default the
    /// host's) with `auth`. With `all_tags` (an untagged reference without a digest,
    /// `docker pull --all-tags`) every tag of the repository is pulled, one after the
    /// other in one progress stream. Each image pulled emits the `pull` event.
    ///
    /// Errors (before any progress): those of resolving the reference or listing the
    /// tags (unknown repository or tag, refused credentials, unreachable registry).
    pub async fn pull_image(
        self: &Arc<Self>,
        reference: Reference,
        all_tags: bool,
        platform: Option<String>,
        auth: AuthConfig,
    ) -> Result<Progress, RegistryError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = self.clone();
        if all_tags {
            let tags = registry::list_tags(&reference, &auth).await?;
            tokio::spawn(async move {
                for t in tags {
                    let mut one = reference.clone();
                    one.tag = Some(t);
                    let res = match registry::prepare_pull(&one, platform.as_deref(), &auth).await {
                        Ok(plan) => registry::run_pull(plan, engine.images.clone(), &tx).await,
                        Err(e) => Err(e),
                    };
                    match res {
                        Ok(_) => engine.emit_image("pull", &one.familiar()),
                        Err(e) => {
                            let _ = tx.send(error_line(&e.to_string()));
                            return;
                        }
                    }
                }
            });
            return Ok(rx);
        }
        let plan = registry::prepare_pull(&reference, platform.as_deref(), &auth).await?;
        let name = reference.with_default_tag().familiar();
        tokio::spawn(async move {
            match registry::run_pull(plan, engine.images.clone(), &tx).await {
                Ok(_) => engine.emit_image("pull", &name),
                Err(e) => {
                    let _ = tx.send(error_line(&e.to_string()));
                }
            }
        });
        Ok(rx)
    }

    /// POST /images/{name}/push: pushes the local image `reference` (a tag; `latest`
    /// when none is given) with `auth`, layers the registry holds in another repository
    /// mounted rather than uploaded. Emits the `push` event once done.
    ///
    /// Errors: 400 a digest reference; 404 no local image of that name.
    pub fn push_image(
        self: &Arc<Self>,
        reference: &Reference,
        auth: AuthConfig,
    ) -> Result<Progress, EngineError> {
        if reference.digest.is_some() {
            return Err(EngineError::InvalidParam(format!(
                "cannot push a digest reference ({}): push a tag",
                reference.familiar()
            )));
        }
        let full = reference.clone().with_default_tag();
        if self.images.get(&full.full()).is_err() {
            return Err(EngineError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar_name()
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = self.clone();
        tokio::spawn(async move {
            match registry::push(engine.images.clone(), &full, &auth, &tx).await {
                Ok(_) => engine.emit_image("push", &full.familiar()),
                Err(e) => {
                    let _ = tx.send(error_line(&e.to_string()));
                }
            }
        });
        Ok(rx)
    }

    /// POST /auth: checks `auth` against its registry; returns the status message
    /// (`Login Succeeded`).
    ///
    /// Errors: 401 refused credentials; 500 an unreachable registry.
    pub async fn registry_login(&self, auth: &AuthConfig) -> Result<String, RegistryError> {
        registry::check_auth(auth).await
    }

    /// GET /distribution/{name}/json: the registry's descriptor of `reference` and the
    /// platforms it holds, without pulling it.
    ///
    /// Errors: those of the registry (404 unknown, 401 refused, 500 unreachable).
    pub async fn inspect_distribution(
        &self,
        reference: &Reference,
        auth: &AuthConfig,
    ) -> Result<Value, RegistryError> {
        registry::inspect_distribution(reference, auth).await
    }

    /// GET /images/search: the repositories the registry named in `term` (Docker Hub
    /// by default) finds through its v1 search API, at most `limit`, kept when they pass
    /// `filters` as moby's: `is-official=true|false`, `is-automated=true|false`,
    /// `stars=N` (at least N stars).
    ///
    /// Errors: 400 an unknown filter or a bad value (named); those of the registry.
    pub async fn search_images(
        &self,
        term: &str,
        limit: Option<u32>,
        filters: &HashMap<String, Vec<String>>,
        auth: &AuthConfig,
    ) -> Result<Vec<SearchResult>, RegistryError> {
        let mut official = None;
        let mut automated = None;
        let mut stars = 0u64;
        for (k, vals) in filters {
            for v in vals {
                let boolean = || match v.as_str() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(RegistryError::BadRequest(format!(
                        "invalid filter '{k}={v}': expected true or false"
                    ))),
                };
                match k.as_str() {
                    "is-official" => official = Some(boolean()?),
                    "is-automated" => automated = Some(boolean()?),
                    "stars" => {
                        stars = v.parse().map_err(|_| {
                            RegistryError::BadRequest(format!(
                                "invalid filter 'stars={v}': expected a number"
                            ))
                        })?
                    }
                    _ => {
                        return Err(RegistryError::BadRequest(format!(
                            "invalid filter '{k}': valid filters are is-official, is-automated and stars"
                        )))
                    }
                }
            }
        }
        Ok(registry::search(term, limit, auth)
            .await?
            .into_iter()
            .filter(|r| official.is_none_or(|o| r.is_official == o))
            .filter(|r| automated.is_none_or(|a| r.is_automated == a))
            .filter(|r| r.star_count >= stars)
            .collect())
    }
}
