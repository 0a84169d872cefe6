{{/* Labels every object carries. */}}
{{- define "rpt-transfer.labels" -}}
app.kubernetes.io/name: rpt-transfer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rpt-transfer
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Selector labels of one component: include "rpt-transfer.selectorLabels" (list . "mlflow") */}}
{{- define "rpt-transfer.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: rpt-transfer
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* An image reference from {repository, tag, digest}: repository:tag, or repository:tag@digest. */}}
{{- define "rpt-transfer.image" -}}
{{- $ref := printf "%s:%s" .repository (toString .tag) -}}
{{- if .digest }}{{ $ref = printf "%s@%s" $ref .digest }}{{ end -}}
{{- $ref -}}
{{- end }}

{{/* The bucket of the store's s3:// URI. */}}
{{- define "rpt-transfer.storeBucket" -}}
{{- regexReplaceAll "^s3://([^/]+).*$" .Values.store.uri "${1}" -}}
{{- end }}

{{/* The S3 endpoint pods use: the value given, else the in-cluster server's Service. */}}
{{- define "rpt-transfer.s3Endpoint" -}}
{{- if .Values.store.endpoint -}}
{{- .Values.store.endpoint -}}
{{- else if .Values.inClusterS3.enabled -}}
{{- printf "http://rpt-transfer-s3.%s.svc:8333" .Release.Namespace -}}
{{- end -}}
{{- end }}

{{/* MLflow's URI as the pods reach it: the release's server, or the external one. */}}
{{- define "rpt-transfer.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://rpt-transfer-mlflow.%s.svc:5000" .Release.Namespace -}}
{{- else -}}
{{- .Values.mlflow.externalUri -}}
{{- end -}}
{{- end }}

{{/* The reward service's URL as train pods reach it (RPT_REWARD_URL). */}}
{{- define "rpt-transfer.rewardUrl" -}}
{{- printf "http://rpt-transfer-reward.%s.svc:8000/get_reward" .Release.Namespace -}}
{{- end }}

{{/* Restricted Pod Security Standard, pod level (the uid comes from each image's numeric USER). */}}
{{- define "rpt-transfer.podSecurity" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Restricted Pod Security Standard, container level. */}}
{{- define "rpt-transfer.containerSecurity" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end }}

{{/* A pod's labels: its component's selector labels and the release's version: include "rpt-transfer.podLabels" (list . "mlflow") */}}
{{- define "rpt-transfer.podLabels" -}}
{{ include "rpt-transfer.selectorLabels" . }}
app.kubernetes.io/part-of: rpt-transfer
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
{{- end }}
