//! The operations of a document, with references followed and path-level
//! parameters merged: what the static rules and the probes work from.

use serde_json::Value;

use super::{Document, escape_token};

/// The HTTP methods an OpenAPI path item can hold, lower-case as written.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub schema: Option<Value>,
    /// `example`, or the first of `examples`.
    pub example: Option<Value>,
    pub pointer: String,
}

/// One media type of a request body or a response.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaType {
    /// As declared, e.g. `application/json`.
    pub name: String,
    /// The schema, references not followed (follow them with
    /// [`Document::resolve`]).
    pub schema: Option<Value>,
    /// `example`, or the first of `examples`.
    pub example: Option<Value>,
    pub pointer: String,
}

impl MediaType {
    /// True for `application/json` and any `+json` type.
    pub fn is_json(&self) -> bool {
        let essence = self.name.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
            || essence.to_ascii_lowercase().ends_with("+json")
    }
}

/// An operation's request body.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestBody {
    pub required: bool,
    pub content: Vec<MediaType>,
    pub pointer: String,
}

impl RequestBody {
    /// The first JSON media type, if any.
    pub fn json(&self) -> Option<&MediaType> {
        self.content.iter().find(|m| m.is_json())
    }
}

/// One declared response.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseDecl {
    /// The key as written: `201`, `4XX` or `default`.
    pub status: String,
    /// False when the response is a `$ref` that could not be followed:
    /// it is declared, but what it holds is unknown.
    pub followed: bool,
    /// Header names as declared.
    pub headers: Vec<String>,
    pub content: Vec<MediaType>,
    pub pointer: String,
}

impl ResponseDecl {
    /// True when the response declares header `name` (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// The numeric status, when the key is one.
    pub fn code(&self) -> Option<u16> {
        self.status.parse().ok()
    }
}

/// Who may call an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// No credentials needed (no requirement, `security: []`, or an empty
    /// alternative `{}`).
    Public,
    /// Credentials from one of `schemes`; when `roles` is not empty, one
    /// of them is needed too.
    Required {
        schemes: Vec<String>,
        roles: Vec<String>,
    },
}

/// A part of an operation's declaration that is a `$ref` which could not
/// be followed (remote, to a missing file, dangling or cyclic).
#[derive(Debug, Clone, PartialEq)]
pub struct Unfollowed {
    pub what: Declared,
    /// The `$ref` as it stands in the document.
    pub reference: String,
}

/// Which part of an operation is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    /// The whole operation (its object is a `$ref`).
    Operation,
    /// The `responses` map.
    Responses,
    /// One response, by its key.
    Response(String),
    RequestBody,
}

/// One operation: a method on a path template.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Upper-case, e.g. `POST`.
    pub method: String,
    /// The path template as declared, e.g. `/users/{id}`.
    pub path: String,
    pub pointer: String,
    pub operation_id: Option<String>,
    pub security: Security,
    /// `x-concealed: true`: callers without the role get 404, not 403.
    pub concealed: bool,
    pub deprecated: bool,
    /// Path-level and operation-level parameters merged (the operation's
    /// win), references followed.
    pub parameters: Vec<Parameter>,
    pub request_body: Option<RequestBody>,
    pub responses: Vec<ResponseDecl>,
    /// What the declaration refers to but could not be read: rules that
    /// need it do not judge the operation.
    pub unfollowed: Vec<Unfollowed>,
}

impl Operation {
    /// `METHOD /path`, for reports.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The response declared under exactly this key (`201`, `4XX`).
    pub fn response(&self, status: &str) -> Option<&ResponseDecl> {
        self.responses
            .iter()
            .find(|r| r.status.eq_ignore_ascii_case(status))
    }

    /// The response that documents `code`: its exact key, else its range
    /// (`4XX`), else `default`.
    pub fn response_for(&self, code: u16) -> Option<&ResponseDecl> {
        let range = format!("{}XX", code / 100);
        self.response(&code.to_string())
            .or_else(|| self.response(&range))
            .or_else(|| self.response("default"))
    }

    pub fn is_secured(&self) -> bool {
        matches!(self.security, Security::Required { .. })
    }

    /// The roles one of which the operation requires (empty: any caller
    /// with valid credentials).
    pub fn roles(&self) -> &[String] {
        match &self.security {
            Security::Required { roles, .. } => roles,
            Security::Public => &[],
        }
    }

    /// The unfollowed `$ref` that hides `what`, if any; the whole
    /// operation hides its responses and body too.
    pub fn unknown(&self, what: &Declared) -> Option<&Unfollowed> {
        self.unfollowed.iter().find(|u| {
            u.what == *what
                || u.what == Declared::Operation
                || (u.what == Declared::Responses && matches!(what, Declared::Response(_)))
        })
    }
}

/// The `$ref` of `node`, if it is a reference.
fn reference(node: &Value) -> String {
    node.get("$ref")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Every operation of `doc`, in document order. A path item that is a
/// `$ref` which cannot be followed yields no operations (its methods are
/// unknown).
pub fn operations(doc: &Document) -> Vec<Operation> {
    let mut out = Vec::new();
    let Some(paths) = doc.root.get("paths").and_then(Value::as_object) else {
        return out;
    };
    let root_security = doc.root.get("security");
    // Sorted by the path's key in the root file, then the method's place.
    let mut order = Vec::new();
    for (path, item) in paths {
        let key_pointer = format!("/paths/{}", escape_token(path));
        let Some((item, item_pointer)) = doc.resolve(item, &key_pointer) else {
            continue;
        };
        let shared = parameters(
            doc,
            item.get("parameters"),
            &format!("{item_pointer}/parameters"),
        );
        for method in METHODS {
            let Some(declared) = item.get(method).filter(|op| op.is_object()) else {
                continue;
            };
            let mut unfollowed = Vec::new();
            let at = format!("{item_pointer}/{method}");
            let (op, pointer) = match doc.resolve(declared, &at) {
                Some(found) => found,
                None => {
                    unfollowed.push(Unfollowed {
                        what: Declared::Operation,
                        reference: reference(declared),
                    });
                    (declared, at)
                }
            };
            let mut params =
                parameters(doc, op.get("parameters"), &format!("{pointer}/parameters"));
            for p in &shared {
                if !params
                    .iter()
                    .any(|q| q.name == p.name && q.location == p.location)
                {
                    params.push(p.clone());
                }
            }
            let request_body = op.get("requestBody").and_then(|body| {
                let Some((body, at)) = doc.resolve(body, &format!("{pointer}/requestBody")) else {
                    unfollowed.push(Unfollowed {
                        what: Declared::RequestBody,
                        reference: reference(body),
                    });
                    return None;
                };
                Some(RequestBody {
                    required: body.get("required").and_then(Value::as_bool) == Some(true),
                    content: content(doc, body.get("content"), &format!("{at}/content")),
                    pointer: at,
                })
            });
            let responses_at = format!("{pointer}/responses");
            let responses = match op.get("responses") {
                Some(map) => match doc.resolve(map, &responses_at) {
                    Some((map, at)) => responses(doc, Some(map), &at),
                    None => {
                        unfollowed.push(Unfollowed {
                            what: Declared::Responses,
                            reference: reference(map),
                        });
                        Vec::new()
                    }
                },
                None => Vec::new(),
            };
            for response in responses.iter().filter(|r| !r.followed) {
                let node = doc.node(&response.pointer);
                unfollowed.push(Unfollowed {
                    what: Declared::Response(response.status.clone()),
                    reference: node.map(reference).unwrap_or_default(),
                });
            }
            order.push((doc.order(&key_pointer), doc.order(&pointer)));
            out.push(Operation {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                operation_id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                security: security(op.get("security").or(root_security), op.get("x-roles")),
                concealed: op.get("x-concealed").and_then(Value::as_bool) == Some(true),
                deprecated: op.get("deprecated").and_then(Value::as_bool) == Some(true),
                parameters: params,
                request_body,
                responses,
                unfollowed,
                pointer,
            });
        }
    }
    // Objects are read into sorted maps; positions restore document order.
    let mut keyed: Vec<_> = order.into_iter().zip(out).collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, op)| op).collect()
}

fn security(requirements: Option<&Value>, x_roles: Option<&Value>) -> Security {
    let mut schemes = Vec::new();
    let mut roles: Vec<String> = Vec::new();
    let mut public = true;
    if let Some(list) = requirements.and_then(Value::as_array) {
        // An empty alternative `{}` makes credentials optional.
        public = list.is_empty()
            || list
                .iter()
                .any(|alt| alt.as_object().is_some_and(|m| m.is_empty()));
        for alternative in list.iter().filter_map(Value::as_object) {
            for (scheme, scopes) in alternative {
                if !schemes.contains(scheme) {
                    schemes.push(scheme.clone());
                }
                for scope in scopes.as_array().into_iter().flatten() {
                    if let Some(scope) = scope.as_str()
                        && !roles.iter().any(|r| r == scope)
                    {
                        roles.push(scope.to_owned());
                    }
                }
            }
        }
        // An alternative that asks for no scope lets any authenticated
        // caller in (OpenAPI: any one requirement suffices), so scopes
        // restrict no one.
        let unscoped = |alt: &serde_json::Map<String, Value>| {
            !alt.is_empty()
                && alt
                    .values()
                    .all(|scopes| scopes.as_array().is_none_or(Vec::is_empty))
        };
        if list.iter().filter_map(Value::as_object).any(unscoped) {
            roles.clear();
        }
    }
    for role in x_roles.and_then(Value::as_array).into_iter().flatten() {
        if let Some(role) = role.as_str()
            && !roles.iter().any(|r| r == role)
        {
            roles.push(role.to_owned());
        }
    }
    if public {
        Security::Public
    } else {
        Security::Required { schemes, roles }
    }
}

fn parameters(doc: &Document, list: Option<&Value>, pointer: &str) -> Vec<Parameter> {
    let mut out = Vec::new();
    for (i, param) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some((param, at)) = doc.resolve(param, &format!("{pointer}/{i}")) else {
            continue;
        };
        let Some(name) = param.get("name").and_then(Value::as_str) else {
            continue;
        };
        let location = match param.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => Location::Header,
            Some("cookie") => Location::Cookie,
            _ => continue,
        };
        let schema = param.get("schema").cloned();
        out.push(Parameter {
            name: name.to_owned(),
            location,
            required: location == Location::Path
                || param.get("required").and_then(Value::as_bool) == Some(true),
            example: example(param)
                .or_else(|| schema.as_ref().and_then(|s| s.get("example").cloned())),
            schema,
            pointer: at,
        });
    }
    out
}

/// `example`, or the value of the first entry of `examples`.
fn example(node: &Value) -> Option<Value> {
    node.get("example").cloned().or_else(|| {
        node.get("examples")
            .and_then(Value::as_object)
            .and_then(|m| m.values().next())
            .and_then(|e| e.get("value"))
            .cloned()
    })
}

fn content(doc: &Document, map: Option<&Value>, pointer: &str) -> Vec<MediaType> {
    let mut out = Vec::new();
    for (name, media) in map.and_then(Value::as_object).into_iter().flatten() {
        let at = format!("{pointer}/{}", escape_token(name));
        let Some((media, at)) = doc.resolve(media, &at) else {
            continue;
        };
        out.push(MediaType {
            name: name.clone(),
            schema: media.get("schema").cloned(),
            example: example(media),
            pointer: at,
        });
    }
    out
}

fn responses(doc: &Document, map: Option<&Value>, pointer: &str) -> Vec<ResponseDecl> {
    let mut out = Vec::new();
    for (status, response) in map.and_then(Value::as_object).into_iter().flatten() {
        let at = format!("{pointer}/{}", escape_token(status));
        let Some((response, at)) = doc.resolve(response, &at) else {
            out.push(ResponseDecl {
                status: status.clone(),
                followed: false,
                headers: Vec::new(),
                content: Vec::new(),
                pointer: at,
            });
            continue;
        };
        out.push(ResponseDecl {
            status: status.clone(),
            followed: true,
            headers: response
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default(),
            content: content(doc, response.get("content"), &format!("{at}/content")),
            pointer: at,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"
openapi: 3.0.3
info: {title: t, version: '1'}
security:
  - bearer: []
paths:
  /users/{id}:
    parameters:
      - name: id
        in: path
        required: true
        schema: {type: integer, example: 7}
    get:
      security: []
      responses:
        '200': {$ref: '#/components/responses/User'}
        4XX: {description: client error}
    delete:
      x-roles: [admin]
      x-concealed: true
      responses:
        '204': {description: gone}
  /reports:
    get:
      security:
        - bearer: [auditor]
        - apiKey: [admin]
      responses:
        default: {description: any}
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Report'}
            examples:
              first: {value: {title: x}}
      responses:
        '201':
          description: created
          headers:
            Location: {schema: {type: string}}
components:
  schemas:
    Report: {type: object, required: [title], properties: {title: {type: string}}}
  responses:
    User:
      description: ok
      content:
        application/json: {schema: {type: object}}
"##;

    #[test]
    fn operations_merge_refs_security_and_parameters() {
        let doc = Document::parse("api.yaml", DOC).unwrap();
        let ops = operations(&doc);
        let labels: Vec<_> = ops.iter().map(Operation::label).collect();
        assert_eq!(
            labels,
            [
                "GET /users/{id}",
                "DELETE /users/{id}",
                "GET /reports",
                "POST /reports"
            ]
        );
        let get = &ops[0];
        assert_eq!(get.security, Security::Public);
        assert_eq!(get.parameters[0].example, Some(serde_json::json!(7)));
        let ok = get.response_for(200).unwrap();
        assert_eq!(ok.pointer, "/components/responses/User");
        assert!(ok.content[0].is_json());
        assert_eq!(get.response_for(404).unwrap().status, "4XX");
        assert!(get.response_for(500).is_none());

        let delete = &ops[1];
        assert_eq!(delete.roles(), ["admin"]);
        assert!(delete.concealed);
        assert_eq!(delete.pointer, "/paths/~1users~1{id}/delete");

        let reports = &ops[2];
        assert_eq!(
            reports.security,
            Security::Required {
                schemes: vec!["bearer".into(), "apiKey".into()],
                roles: vec!["auditor".into(), "admin".into()],
            }
        );
        let post = &ops[3];
        assert!(post.is_secured() && post.roles().is_empty());
        let body = post.request_body.as_ref().unwrap();
        assert!(body.required);
        assert_eq!(
            body.json().unwrap().example,
            Some(serde_json::json!({"title": "x"}))
        );
        assert!(post.response("201").unwrap().has_header("location"));
        assert_eq!(doc.line(&post.pointer), Some(30));
    }

    #[test]
    fn an_alternative_without_scopes_requires_no_role() {
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let roles = |requirements: &str, x_roles: Option<&str>| {
            let x = x_roles.map(json);
            match security(Some(&json(requirements)), x.as_ref()) {
                Security::Required { roles, .. } => roles,
                Security::Public => vec!["<public>".to_owned()],
            }
        };
        assert_eq!(roles(r#"[{"oauth": ["admin"]}]"#, None), ["admin"]);
        assert!(roles(r#"[{"oauth": ["admin"]}, {"apiKey": []}]"#, None).is_empty());
        assert!(
            roles(
                r#"[{"oauth": ["admin"], "apiKey": []}, {"bearer": []}]"#,
                None
            )
            .is_empty()
        );
        assert_eq!(roles(r#"[{"oauth": ["admin"]}, {}]"#, None), ["<public>"]);
        // x-roles still name the roles one of which is needed.
        assert_eq!(
            roles(r#"[{"oauth": ["a"]}, {"apiKey": []}]"#, Some(r#"["ops"]"#)),
            ["ops"]
        );
    }
}
