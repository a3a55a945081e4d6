{{- define "signalbox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signalbox.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "signalbox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signalbox.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "signalbox.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "signalbox.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "signalbox.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "signalbox.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The SignalBox config file: container settings, retention, then .Values.config. */}}
{{- define "signalbox.config" -}}
{{- $base := dict
  "data_dir" "/var/lib/signalbox"
  "otlp" (dict "grpc_addr" (printf "0.0.0.0:%d" (int .Values.service.otlpGrpcPort)) "http_addr" (printf "0.0.0.0:%d" (int .Values.service.otlpHttpPort)))
  "http" (dict "addr" (printf "0.0.0.0:%d" (int .Values.service.httpPort)))
  "log" (dict "format" "json")
  "storage" (dict
    "metrics" (dict "retention" .Values.retention.metrics)
    "logs" (dict "retention" .Values.retention.logs)
    "traces" (dict "retention" .Values.retention.traces)) -}}
{{- if .Values.rules }}
{{- $_ := set $base "rules" (dict "files" (list "/etc/signalbox-rules/*.yml" "/etc/signalbox-rules/*.yaml")) }}
{{- end }}
{{- if .Values.dashboards }}
{{- $_ := set $base "dashboards" (dict "dir" "/etc/signalbox-dashboards") }}
{{- end }}
{{- if .Values.alertmanager.config }}
{{- $_ := set $base "alerting" (dict "config_file" "/etc/signalbox/alertmanager.yml") }}
{{- end }}
{{- toYaml (mustMergeOverwrite $base (deepCopy .Values.config)) }}
{{- end }}

{{/* The Secret holding notification credentials, if any. */}}
{{- define "signalbox.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else if .Values.secrets.create -}}
{{- include "signalbox.fullname" . }}-secrets
{{- end -}}
{{- end }}
