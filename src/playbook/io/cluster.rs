//! The cluster backend's edge: reads the credentials a playbook names (a file or a variable,
//! never held in the playbook or printed), then asks the cluster over HTTP(S) for the index's
//! `_mapping` and one `_search`, and turns every failure into one line that says what to do.

use std::path::Path;

use base64::Engine;
use serde_json::Value as Json;

use super::http::{HttpClient, Method, Reply};
use super::local::LocalBackend;
use crate::playbook::search::backend::opensearch::{Cluster, OpenSearchBackend};
use crate::playbook::search::backend::{Backend, BackendError, SearchOutput};
use crate::playbook::search::SearchSpec;
use crate::playbook::spec::{Auth, OpenSearchSource, Secret, Source};

/// Runs `spec` against the playbook's source: its files, or its cluster.
pub fn search(
    source: &Source,
    dir: &Path,
    threads: usize,
    spec: &SearchSpec<'_>,
) -> Result<SearchOutput, BackendError> {
    let Some(os) = &source.opensearch else {
        return LocalBackend {
            base_dir: dir.to_path_buf(),
            paths: source.paths.clone(),
            format: source.format,
            threads,
        }
        .search(spec);
    };
    let format = source
        .format
        .ok_or_else(|| BackendError::Backend("`source.opensearch` needs `source.format`".into()))?;
    OpenSearchBackend {
        index: os.index.clone(),
        format,
        time_field: os.time_field.clone(),
        cluster: HttpCluster::new(os, dir)?,
    }
    .search(spec)
}

/// A cluster reached over HTTP(S), with its `Authorization` header ready.
pub struct HttpCluster {
    client: HttpClient,
    url: String,
    authorization: Option<String>,
}

fn read_secret(secret: &Secret, dir: &Path, what: &str) -> Result<String, BackendError> {
    let value = match secret {
        Secret::File(f) => {
            let path = dir.join(f);
            std::fs::read_to_string(&path).map_err(|e| {
                BackendError::Backend(format!(
                    "cannot read the {what} file {}: {e}; check `source.opensearch.auth` and the file's permissions",
                    path.display()
                ))
            })?
        }
        Secret::Env(var) => std::env::var(var).map_err(|_| {
            BackendError::Backend(format!(
                "the {what} variable `{var}` is not set in the runner's environment; set it (e.g. in the unit's EnvironmentFile)"
            ))
        })?,
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(BackendError::Backend(format!("the {what} is empty")));
    }
    Ok(value)
}

impl HttpCluster {
    pub fn new(os: &OpenSearchSource, dir: &Path) -> Result<HttpCluster, BackendError> {
        let ca = os.ca_file.as_ref().map(|f| dir.join(f));
        let client = HttpClient::new(os.timeout, ca.as_deref())
            .map_err(|e| BackendError::Backend(e.to_string()))?;
        let authorization = match &os.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                let password = read_secret(password, dir, "password")?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {token}"))
            }
            Auth::ApiKey(key) => Some(format!("ApiKey {}", read_secret(key, dir, "API key")?)),
        };
        Ok(HttpCluster {
            client,
            url: os.url.clone(),
            authorization,
        })
    }

    fn call(&self, method: Method, path: &str, body: Option<&str>) -> Result<Json, String> {
        let mut headers = Vec::new();
        if let Some(a) = &self.authorization {
            headers.push(("Authorization", a.as_str()));
        }
        let url = format!("{}{path}", self.url);
        let reply = self
            .client
            .send(method, &url, &headers, body)
            .map_err(|e| format!("the cluster at {}: {e}", self.url))?;
        if !reply.is_success() {
            return Err(cluster_error(&reply));
        }
        serde_json::from_str(&reply.body).map_err(|e| {
            format!("the cluster at {} answered {} with a body that is not JSON ({e}); is the URL an OpenSearch/Elasticsearch cluster?", self.url, path)
        })
    }
}

/// One line for a cluster's error answer: what happened and what to do.
pub fn cluster_error(reply: &Reply) -> String {
    let body: Json = serde_json::from_str(&reply.body).unwrap_or(Json::Null);
    let err = &body["error"];
    let cause = &err["root_cause"][0];
    let reason = cause["reason"]
        .as_str()
        .or_else(|| err["reason"].as_str())
        .or_else(|| err.as_str())
        .unwrap_or("")
        .to_string();
    let kind = cause["type"]
        .as_str()
        .or_else(|| err["type"].as_str())
        .unwrap_or("");
    let status = reply.status_line();
    match reply.status {
        401 => format!("the cluster refused the credentials ({status}); check `source.opensearch.auth` and the secret it names"),
        403 => format!("the cluster's user may not search this index ({status}: {reason}); grant it read on the index"),
        404 if kind == "index_not_found_exception" || reason.contains("no such index") => format!("the index does not exist ({status}: {reason}); check `source.opensearch.index`"),
        404 => format!("the cluster has no such path ({status}); check `source.opensearch.url` (a proxy prefix?)"),
        400 => format!("the cluster refused the query ({status}, {kind}: {reason}); the request sent is in the status's payload"),
        _ => format!("the cluster answered {status}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") }),
    }
}

impl Cluster for HttpCluster {
    fn mapping(&self, index: &str) -> Result<Json, String> {
        self.call(Method::Get, &format!("/{index}/_mapping"), None)
    }

    fn search(&self, index: &str, body: &Json) -> Result<Json, String> {
        self.call(
            Method::Post,
            &format!("/{index}/_search"),
            Some(&body.to_string()),
        )
    }
}
