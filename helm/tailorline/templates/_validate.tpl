{{/*
Rules between values that a JSON schema cannot state; each failure names its keys.
Included once from configmap.yaml.
*/}}
{{- define "tailorline.validate" -}}
{{- $g := .Values.gateway -}}
{{- $gwMin := ternary $g.autoscaling.minReplicas $g.replicas $g.autoscaling.enabled | int -}}
{{- if and $g.autoscaling.enabled (gt (int $g.autoscaling.minReplicas) (int $g.autoscaling.maxReplicas)) -}}
{{- fail (printf "gateway.autoscaling.minReplicas=%v exceeds gateway.autoscaling.maxReplicas=%v" $g.autoscaling.minReplicas $g.autoscaling.maxReplicas) -}}
{{- end -}}
{{- if and $g.pdb.enabled (ge (int $g.pdb.minAvailable) $gwMin) -}}
{{- fail (printf "gateway.pdb.minAvailable=%v would block every node drain with %d gateway replica(s): lower it or raise the replicas" $g.pdb.minAvailable $gwMin) -}}
{{- end -}}
{{- $p := .Values.predictor -}}
{{- if gt (int $p.minReplicas) (int $p.maxReplicas) -}}
{{- fail (printf "predictor.minReplicas=%v exceeds predictor.maxReplicas=%v" $p.minReplicas $p.maxReplicas) -}}
{{- end -}}
{{- $w := .Values.optimizer.worker -}}
{{- if or (gt (int $w.minReplicas) (int $w.replicas)) (gt (int $w.replicas) (int $w.maxReplicas)) -}}
{{- fail (printf "optimizer.worker needs minReplicas <= replicas <= maxReplicas, got %v <= %v <= %v" $w.minReplicas $w.replicas $w.maxReplicas) -}}
{{- end -}}
{{- if and .Values.gateway.tls.enabled (not .Values.gateway.tls.secretName) -}}
{{- fail "gateway.tls.secretName is required when gateway.tls.enabled=true" -}}
{{- end -}}
{{- if .Values.production -}}
{{- /* Production renders generate nothing random: a generated key would be a new one on every
`helm template` or GitOps render (lookup sees no cluster there) and silently change every stored
pseudonym or lock the processes out of their database. */ -}}
{{- if not .Values.secrets.existingSecret -}}
{{- fail "production=true needs secrets.existingSecret: the pseudonym key must never change, and a generated one would be regenerated on every helm template/GitOps render (create the Secret first: k8s/README.md)" -}}
{{- end -}}
{{- if and (eq .Values.database.mode "internal") (not .Values.database.internal.existingSecret) -}}
{{- fail "production=true with database.mode=internal needs database.internal.existingSecret (POSTGRES_PASSWORD, TAILORLINE_DB_URL): a generated password would change on every helm template/GitOps render" -}}
{{- end -}}
{{- if not .Values.gateway.tls.enabled -}}
{{- fail "production=true needs gateway.tls.enabled=true (and gateway.tls.secretName): the gateway carries customer data and bearer tokens" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.gateway.config.retrainLauncher "kuberay") (not .Values.rbac.create) -}}
{{- fail "gateway.config.retrainLauncher=kuberay needs rbac.create=true (the gateway creates RayJobs)" -}}
{{- end -}}
{{- end -}}
