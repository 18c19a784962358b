//! The OpenAPI 3 document of the data API, built from the list of charts and exports so
//! that it cannot forget one.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::access::SESSION_COOKIE;
use crate::chart::Chart;
use crate::export::{Format, REPORTS};
use crate::paths;

pub(crate) async fn document() -> Json<Value> {
    Json(build())
}

pub(crate) fn build() -> Value {
    let mut paths = Map::new();
    for chart in Chart::ALL {
        paths.insert(
            paths::chart_data(chart.name()),
            json!({"get": operation(&format!("chart_{}", chart.name()), chart.summary(), "application/json", "The answer as JSON")}),
        );
    }
    let exports: Vec<&str> = std::iter::once(REPORTS)
        .chain(Chart::ALL.iter().map(|c| c.name()))
        .collect();
    for name in &exports {
        for format in Format::ALL {
            let summary = if *name == REPORTS {
                format!(
                    "Raw reports of the date range, streamed, as {}",
                    format.extension().to_uppercase()
                )
            } else {
                format!(
                    "The {name} answer as a table, as {}",
                    format.extension().to_uppercase()
                )
            };
            paths.insert(
                paths::export(name, format.extension()),
                json!({"get": operation(
                    &format!("export_{name}_{}", format.extension()),
                    &summary,
                    format.content_type().split(';').next().unwrap_or_default(),
                    "A file download (Content-Disposition: attachment)",
                )}),
            );
        }
    }
    paths.insert(
        paths::FILTER_CHOICES.into(),
        json!({"get": {
            "operationId": "filters",
            "summary": "The versions and OS names most counted in the range (at most 50 of each, each counted a few cluster-weeks at least), for filter lists",
            "parameters": [
                {"$ref": "#/components/parameters/from"},
                {"$ref": "#/components/parameters/to"}
            ],
            "responses": {"200": {"description": "Filter choices", "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {
                    "versions": {"type": "array", "items": {"type": "string"}},
                    "os": {"type": "array", "items": {"type": "string"}}
                }
            }}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}
        }}),
    );
    paths.insert(
        paths::OPENAPI.into(),
        json!({"get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {}}}}
        }}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Beacon collector data API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Anonymous usage analytics of EMQX-compatible nodes, from daily rollups. \
                Weeks are ISO weeks (Monday to Sunday, UTC); a cluster counts once per week \
                however many of its nodes report; range answers count cluster-weeks."
        },
        "security": [{"apiToken": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "An API token created on the console's API tokens page"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE}
            },
            "parameters": {
                "from": {"name": "from", "in": "query", "description": "First day (UTC), inclusive; default 26 weeks before `to`", "schema": {"type": "string", "format": "date"}},
                "to": {"name": "to", "in": "query", "description": "Last day (UTC), inclusive; default today", "schema": {"type": "string", "format": "date"}},
                "version": {"name": "version", "in": "query", "description": "Only clusters running this EMQX version", "schema": {"type": "string"}},
                "os": {"name": "os", "in": "query", "description": "Only clusters on this OS name", "schema": {"type": "string"}}
            },
            "responses": {
                "Unauthorized": {"description": "No session and no valid API token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "BadRequest": {"description": "A parameter cannot be used (the message names it)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
            }
        }
    })
}

fn operation(id: &str, summary: &str, content_type: &str, description: &str) -> Value {
    json!({
        "operationId": id,
        "summary": summary,
        "parameters": [
            {"$ref": "#/components/parameters/from"},
            {"$ref": "#/components/parameters/to"},
            {"$ref": "#/components/parameters/version"},
            {"$ref": "#/components/parameters/os"}
        ],
        "responses": {
            "200": {"description": description, "content": {content_type: {}}},
            "400": {"$ref": "#/components/responses/BadRequest"},
            "401": {"$ref": "#/components/responses/Unauthorized"}
        }
    })
}
