{{/*
Names and labels. Every template takes names and labels from here, never spells them itself.
*/}}

{{- define "tailorline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified release name, cut so that the longest suffix below ("-retrain-cron", 13
characters) still fits 63; KServe/KubeRay derive further names from it, so keep it short.
*/}}
{{- define "tailorline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tailorline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the pods of the whole release (NetworkPolicy peers use them). */}}
{{- define "tailorline.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tailorline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "tailorline.labels" -}}
helm.sh/chart: {{ include "tailorline.chart" .ctx }}
{{ include "tailorline.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: tailorline
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "tailorline.selectorLabels" -}}
{{ include "tailorline.releaseSelectorLabels" .ctx }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* Resource names. */}}
{{- define "tailorline.gateway.fullname" -}}{{ include "tailorline.fullname" . }}-gateway{{- end -}}
{{- define "tailorline.predictor.fullname" -}}{{ include "tailorline.fullname" . }}-predictor{{- end -}}
{{- define "tailorline.optimizer.fullname" -}}{{ include "tailorline.fullname" . }}-optimizer{{- end -}}
{{- define "tailorline.optimizer.serveServiceName" -}}{{ include "tailorline.fullname" . }}-optimizer-serve{{- end -}}
{{- define "tailorline.retrain.fullname" -}}{{ include "tailorline.fullname" . }}-retrain{{- end -}}
{{- define "tailorline.postgresql.fullname" -}}{{ include "tailorline.fullname" . }}-postgresql{{- end -}}
{{- define "tailorline.config.fullname" -}}{{ include "tailorline.fullname" . }}-config{{- end -}}
{{- define "tailorline.rayjobTemplate.fullname" -}}{{ include "tailorline.fullname" . }}-rayjob-template{{- end -}}

{{- define "tailorline.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "tailorline.fullname" .)) -}}
{{- end -}}

{{- define "tailorline.gateway.serviceAccountName" -}}
{{- .Values.gateway.serviceAccount.name | default (include "tailorline.gateway.fullname" .) -}}
{{- end -}}
{{- define "tailorline.rayHead.serviceAccountName" -}}{{ include "tailorline.fullname" . }}-ray-head{{- end -}}
{{- define "tailorline.workload.serviceAccountName" -}}{{ include "tailorline.fullname" . }}-workload{{- end -}}

{{- define "tailorline.modelsClaimName" -}}
{{- .Values.modelRepository.existingClaim | default (printf "%s-models" (include "tailorline.fullname" .)) -}}
{{- end -}}

{{/* The Secret and key holding TAILORLINE_DB_URL. */}}
{{- define "tailorline.dbSecretName" -}}
{{- if eq .Values.database.mode "external" -}}
{{- required "database.external.existingSecret is required when database.mode=external" .Values.database.external.existingSecret -}}
{{- else -}}
{{- .Values.database.internal.existingSecret | default (include "tailorline.postgresql.fullname" .) -}}
{{- end -}}
{{- end -}}
{{- define "tailorline.dbSecretKey" -}}
{{- if eq .Values.database.mode "external" -}}{{ .Values.database.external.existingSecretKey }}{{- else -}}TAILORLINE_DB_URL{{- end -}}
{{- end -}}

{{/* An image reference; call with (dict "ctx" $ "image" .Values.gateway.image). */}}
{{- define "tailorline.image" -}}
{{- $registry := .image.registry | default .ctx.Values.image.registry -}}
{{- $tag := .image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion -}}
{{- $repo := ternary .image.repository (printf "%s/%s" $registry .image.repository) (empty $registry) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "tailorline.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod security context; call with (dict "ctx" $ "uid" 10001). */}}
{{- define "tailorline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context: the same for every container of the chart. */}}
{{- define "tailorline.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
GPU rule: a GPU request on the CPU profile fails the render, naming the key. The schema says the
same (if/then); this message is for values that slip past it (for example --set with a string).
Call with (dict "ctx" $ "key" "predictor.gpu.count" "count" .Values.predictor.gpu.count).
*/}}
{{- define "tailorline.gpuCount" -}}
{{- $count := int .count -}}
{{- if and (eq .ctx.Values.profile "cpu") (gt $count 0) -}}
{{- fail (printf "%s=%d requests GPUs but profile=cpu: set %s=0 or profile=gpu" .key $count .key) -}}
{{- end -}}
{{- $count -}}
{{- end -}}

{{/* Resources with the GPU count added to limits (and requests); call with
(dict "ctx" $ "resources" .Values.x.resources "gpu" .Values.x.gpu "key" "x.gpu.count"). */}}
{{- define "tailorline.resources" -}}
{{- $res := deepCopy .resources -}}
{{- $gpus := include "tailorline.gpuCount" (dict "ctx" .ctx "key" .key "count" .gpu.count) | int -}}
{{- if gt $gpus 0 -}}
{{- $_ := set $res.limits .gpu.resourceName (toString $gpus) -}}
{{- $_ := set $res.requests .gpu.resourceName (toString $gpus) -}}
{{- end -}}
{{- toYaml $res -}}
{{- end -}}

{{/* Env every tailorline process reads (CoreSettings). */}}
{{- define "tailorline.coreEnv" -}}
- name: TAILORLINE_HOME
  value: /var/lib/tailorline
- name: TAILORLINE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TAILORLINE_MODELS_DIR
  value: /mnt/models
{{- end -}}

{{- define "tailorline.secretsEnv" -}}
- name: TAILORLINE_SECRETS_DIR
  value: /var/run/secrets/tailorline
{{- end -}}

{{/* Secrets as files in TAILORLINE_SECRETS_DIR (one file per field, named like its env var). */}}
{{- /* Call with (dict "ctx" $ "authToken" true) to add the gateway's token. */ -}}
{{- define "tailorline.secretsVolume" -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "tailorline.secretName" .ctx }}
          items:
            - key: TAILORLINE_PSEUDONYM_KEY
              path: TAILORLINE_PSEUDONYM_KEY
            {{- if .authToken }}
            - key: TAILORLINE_GATEWAY_AUTH_TOKEN
              path: TAILORLINE_GATEWAY_AUTH_TOKEN
            {{- end }}
      - secret:
          name: {{ include "tailorline.dbSecretName" .ctx }}
          items:
            - key: {{ include "tailorline.dbSecretKey" .ctx }}
              path: TAILORLINE_DB_URL
{{- end -}}

{{/* Pods carrying this label may reach the chart's PostgreSQL. */}}
{{- define "tailorline.dbClientLabel" -}}
tailorline.io/db-client: "true"
{{- end -}}

{{/*
A string as a YAML scalar that round-trips byte for byte: a literal block when that is exact
(one trailing newline, no CR, no leading space), else a double-quoted JSON string.
Call with (dict "s" $content "indent" 4).
*/}}
{{- define "tailorline.exactString" -}}
{{- $s := .s -}}
{{- $literalOk := and (hasSuffix "\n" $s) (not (hasSuffix "\n\n" $s)) (not (contains "\r" $s)) (not (hasPrefix " " $s)) (not (contains " \n" $s)) (not (contains "\t" $s)) -}}
{{- if $literalOk -}}
|
{{ regexReplaceAll "(?m)^ +$" (trimSuffix "\n" $s | indent .indent) "" }}
{{- else -}}
{{ toJson $s }}
{{- end -}}
{{- end -}}

{{- define "tailorline.migrate.fullname" -}}{{ include "tailorline.fullname" . }}-migrate{{- end -}}

{{/* Labels of the monitoring objects (ServiceMonitor, PodMonitor, PrometheusRule, dashboards):
the chart's labels plus monitoring.labels (what your Prometheus/Grafana selects them by). */}}
{{- define "tailorline.monitoringLabels" -}}
{{ include "tailorline.labels" (dict "ctx" .ctx "component" .component) }}
{{- with .ctx.Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod labels copied onto every scraped series (Prometheus spells them
app_kubernetes_io_component, ...): the alert rules and dashboards select and group by them. */}}
{{- define "tailorline.podTargetLabels" -}}
- app.kubernetes.io/part-of
- app.kubernetes.io/instance
- app.kubernetes.io/component
{{- end -}}

{{/* The PromQL matchers that scope a rule to this release: files/prometheus-rules.yaml selects
`app_kubernetes_io_part_of="tailorline"`, and the PrometheusRule adds the namespace and instance
next to it, so two releases never alert on each other's series. */}}
{{- define "tailorline.promReleaseMatchers" -}}
app_kubernetes_io_part_of="tailorline",namespace="{{ .Release.Namespace }}",app_kubernetes_io_instance="{{ .Release.Name }}"
{{- end -}}

{{/* Only the database URL as a file in TAILORLINE_SECRETS_DIR (the migration Job). */}}
{{- define "tailorline.dbSecretVolume" -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "tailorline.dbSecretName" . }}
          items:
            - key: {{ include "tailorline.dbSecretKey" . }}
              path: TAILORLINE_DB_URL
{{- end -}}
