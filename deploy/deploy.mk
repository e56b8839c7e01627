# Deployment targets. Use from the repository root, either directly:
#   make -f deploy/deploy.mk help
# or from the main Makefile with `include deploy/deploy.mk`.

DEPLOY_PY      ?= .venv/bin/python
DEPLOY_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
DEPLOY_REGISTRY ?= ghcr.io/rakuten-mlops
MLFLOW_VERSION ?= 3.17.2
COMPOSE        ?= docker compose -f deploy/compose.yaml --env-file .env
OVERLAY        ?= dev

.PHONY: deploy-help deploy-env images compose-up compose-down compose-ps k8s-render k8s-apply deploy-check promtool-test

deploy-help: ## List the deployment targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(lastword $(MAKEFILE_LIST)) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

deploy-env: ## Write .env with random secrets from .env.example (keeps an existing .env)
	deploy/scripts/gen-env.sh

images: ## Build the api, ui, worker and mlflow images, tagged with the project version
	docker build -f deploy/docker/api.Dockerfile -t $(DEPLOY_REGISTRY)/api:$(DEPLOY_VERSION) .
	docker build -f deploy/docker/ui.Dockerfile -t $(DEPLOY_REGISTRY)/ui:$(DEPLOY_VERSION) .
	docker build -f deploy/docker/worker.Dockerfile -t $(DEPLOY_REGISTRY)/worker:$(DEPLOY_VERSION) .
	docker build -f deploy/docker/mlflow.Dockerfile -t $(DEPLOY_REGISTRY)/mlflow:$(MLFLOW_VERSION) .

compose-up: ## Start the whole stack with docker compose (builds the images)
	$(COMPOSE) up -d --build
	$(COMPOSE) ps

compose-down: ## Stop the stack (volumes are kept; add ARGS=-v to drop them)
	$(COMPOSE) down $(ARGS)

compose-ps: ## Show the state and health of every compose service
	$(COMPOSE) ps

k8s-render: ## Print the manifests of OVERLAY (dev|prod) without touching a cluster
	kubectl kustomize deploy/k8s/overlays/$(OVERLAY)

k8s-apply: ## Apply OVERLAY to the current kubectl context and wait (ARGS=--create-dev-secrets, --yes)
	deploy/scripts/k8s-apply.sh $(OVERLAY) $(ARGS)

deploy-check: ## Offline checks of deploy/: hadolint, kubernetes-validate, promtool, secrets, PromQL
	$(DEPLOY_PY) -m pytest tests/deploy -q

promtool-test: ## Check the Prometheus config and unit-test the alert rules
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/rules/rakuten-alerts.test.yml
