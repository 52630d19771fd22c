{{- define "stockpot.name" -}}stockpot-operator{{- end -}}
{{- define "stockpot.labels" -}}
app.kubernetes.io/name: stockpot-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "stockpot.selector" -}}
app.kubernetes.io/name: stockpot-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
