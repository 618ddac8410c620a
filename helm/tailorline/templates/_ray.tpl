{{/*
Ray pod templates shared by the optimizer's RayService and the retraining RayJob/RayCronJob.
Call with (dict "ctx" $ "component" "optimizer" "role" "head"|"worker" "image" .image
  "resources" .resources "gpu" .gpu-or-nil "gpuKey" "retrain.gpu.count" "ports" list-of-dicts "secrets" bool
  "models" "ro"|"rw"|"" "nodeSelector" {} "tolerations" []).
The Ray container is the first container (KubeRay's rule); KubeRay adds the autoscaler sidecar
itself (its resources and securityContext come from autoscalerOptions) and the /dev/shm volume.
"autoscaler" true: the pod runs the Ray autoscaler (the RayService head).
*/}}
{{- define "tailorline.ray.podTemplate" -}}
{{- $ctx := .ctx -}}
metadata:
  labels:
    {{- include "tailorline.labels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
    {{- if .secrets }}
    {{- include "tailorline.dbClientLabel" $ctx | nindent 4 }}
    {{- end }}
    tailorline.io/ray-role: {{ .role }}
spec:
  {{- if .autoscaler }}
  {{- /* The Ray autoscaler sidecar in this pod scales the cluster through the API: KubeRay binds
  its own Role (pods, rayclusters) to this ServiceAccount. */}}
  serviceAccountName: {{ include "tailorline.rayHead.serviceAccountName" $ctx }}
  automountServiceAccountToken: true
  {{- else }}
  serviceAccountName: {{ include "tailorline.workload.serviceAccountName" $ctx }}
  automountServiceAccountToken: false
  {{- end }}
  {{- if $ctx.Values.image.pullSecrets }}
  {{- include "tailorline.imagePullSecrets" $ctx | nindent 2 }}
  {{- end }}
  securityContext:
    {{- include "tailorline.podSecurityContext" (dict "ctx" $ctx "uid" $ctx.Values.optimizer.runAsUser) | nindent 4 }}
  containers:
    - name: ray-{{ .role }}
      image: {{ include "tailorline.image" (dict "ctx" $ctx "image" .image) }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      {{- with .ports }}
      ports:
        {{- range . }}
        - name: {{ .name }}
          containerPort: {{ .port }}
          protocol: TCP
        {{- end }}
      {{- end }}
      env:
        {{- include "tailorline.coreEnv" $ctx | nindent 8 }}
        {{- if .secrets }}
        {{- include "tailorline.secretsEnv" $ctx | nindent 8 }}
        {{- end }}
        - name: RAY_USAGE_STATS_ENABLED
          value: "0"
      {{- /* Ray's own health endpoints (what KubeRay would probe), as plain HTTP probes. */}}
      readinessProbe:
        httpGet:
          path: {{ ternary "/api/gcs_healthz" "/api/local_raylet_healthz" (eq .role "head") }}
          port: {{ ternary 8265 52365 (eq .role "head") }}
        initialDelaySeconds: 10
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 10
      livenessProbe:
        httpGet:
          path: /api/local_raylet_healthz
          port: 52365
        initialDelaySeconds: 30
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 12
      resources:
        {{- if .gpu }}
        {{- include "tailorline.resources" (dict "ctx" $ctx "resources" .resources "gpu" .gpu "key" .gpuKey) | nindent 8 }}
        {{- else }}
        {{- toYaml .resources | nindent 8 }}
        {{- end }}
      securityContext:
        {{- include "tailorline.containerSecurityContext" $ctx | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: home
          mountPath: /var/lib/tailorline
        {{- if .secrets }}
        - name: secrets
          mountPath: /var/run/secrets/tailorline
          readOnly: true
        {{- end }}
        {{- if .models }}
        - name: models
          mountPath: /mnt/models
          readOnly: {{ eq .models "ro" }}
          {{- with $ctx.Values.predictor.modelPath }}
          subPath: {{ . }}
          {{- end }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 4Gi
    - name: home
      emptyDir:
        sizeLimit: 1Gi
    {{- if .secrets }}
    {{- include "tailorline.secretsVolume" (dict "ctx" $ctx "authToken" false) | nindent 4 }}
    {{- end }}
    {{- if .models }}
    - name: models
      persistentVolumeClaim:
        claimName: {{ include "tailorline.modelsClaimName" $ctx }}
        readOnly: {{ eq .models "ro" }}
    {{- end }}
  {{- with .nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The RayJob spec of a retraining run (used by the ConfigMap template and the RayCronJob). */}}
{{- define "tailorline.retrain.rayJobSpec" -}}
{{- $r := .Values.retrain -}}
{{- $common := dict "ctx" $ "component" "retrain" "image" $r.image "models" "rw" "secrets" true "nodeSelector" $r.nodeSelector "tolerations" $r.tolerations -}}
entrypoint: {{ $r.entrypoint | quote }}
{{- /* HTTPMode: the operator submits through the head's dashboard; no submitter pod. */}}
submissionMode: HTTPMode
shutdownAfterJobFinishes: true
ttlSecondsAfterFinished: {{ $r.ttlSecondsAfterFinished }}
activeDeadlineSeconds: {{ $r.activeDeadlineSeconds }}
backoffLimit: {{ $r.backoffLimit }}
rayClusterSpec:
  rayVersion: {{ .Values.optimizer.rayVersion | quote }}
  headGroupSpec:
    rayStartParams:
      dashboard-host: "0.0.0.0"
    template:
      {{- include "tailorline.ray.podTemplate" (merge (dict "role" "head" "resources" $r.head.resources "ports" (list (dict "name" "gcs" "port" 6379) (dict "name" "dashboard" "port" 8265) (dict "name" "client" "port" 10001))) $common) | nindent 6 }}
  workerGroupSpecs:
    - groupName: train
      replicas: {{ $r.worker.replicas }}
      minReplicas: {{ $r.worker.replicas }}
      maxReplicas: {{ $r.worker.replicas }}
      rayStartParams: {}
      template:
        {{- include "tailorline.ray.podTemplate" (merge (dict "role" "worker" "resources" $r.worker.resources "gpu" $r.gpu "gpuKey" "retrain.gpu.count") $common) | nindent 8 }}
{{- end -}}
