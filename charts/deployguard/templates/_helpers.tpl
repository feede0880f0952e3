{{/* Chart name. */}}
{{- define "deployguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless it is already in it. */}}
{{- define "deployguard.fullname" -}}
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

{{- define "deployguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "deployguard.labels" -}}
helm.sh/chart: {{ include "deployguard.chart" . }}
{{ include "deployguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: deployguard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (immutable on the Deployment: never add to these). */}}
{{- define "deployguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deployguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "deployguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "deployguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt / tls.key (and ca.crt in helm and certManager modes). */}}
{{- define "deployguard.tlsSecretName" -}}
{{- if eq .Values.certs.mode "secret" }}
{{- required "certs.secret.name is required when certs.mode=secret" .Values.certs.secret.name }}
{{- else }}
{{- printf "%s-tls" (include "deployguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names the API server may use for the Service. */}}
{{- define "deployguard.serviceDNSNames" -}}
{{- $svc := include "deployguard.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{- define "deployguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The policy file: .Values.policy with the release namespace appended to
excludedNamespaces (the webhook never judges its own namespace).
*/}}
{{- define "deployguard.policy" -}}
{{- $policy := deepCopy .Values.policy }}
{{- $excluded := list }}
{{- if hasKey $policy "excludedNamespaces" }}
{{- $excluded = $policy.excludedNamespaces | default list }}
{{- else }}
{{- $excluded = list "kube-system" "kube-public" "kube-node-lease" }}
{{- end }}
{{- $_ := set $policy "excludedNamespaces" (append $excluded .Release.Namespace | uniq) }}
{{- toYaml $policy }}
{{- end }}

{{/* Whether the mutating webhook is rendered. */}}
{{- define "deployguard.mutatingEnabled" -}}
{{- if and .Values.webhooks.mutating.enabled (ne (toString (dig "goRuntime" "enabled" true .Values.policy)) "false") }}true{{ end }}
{{- end }}

{{/* namespaceSelector shared by every webhook entry. */}}
{{- define "deployguard.namespaceSelector" -}}
{{- $excluded := concat (list "kube-system" "kube-node-lease" .Release.Namespace) .Values.webhooks.excludedNamespaces | uniq }}
{{- $sel := .Values.webhooks.namespaceSelector }}
{{- with $sel.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml $excluded | nindent 6 }}
  {{- with $sel.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Fields common to every webhook entry. .ctx: root context; .path; .caBundle: PEM string or ""; .matchConditions: webhook-specific list. */}}
{{- define "deployguard.webhookCommon" -}}
{{- $ctx := .ctx -}}
clientConfig:
  service:
    name: {{ include "deployguard.fullname" $ctx }}
    namespace: {{ $ctx.Release.Namespace }}
    path: {{ .path }}
    port: {{ $ctx.Values.service.port }}
  {{- if .caBundle }}
  caBundle: {{ .caBundle | b64enc }}
  {{- end }}
admissionReviewVersions: ["v1"]
sideEffects: None
timeoutSeconds: {{ $ctx.Values.webhooks.timeoutSeconds }}
matchPolicy: Equivalent
namespaceSelector:
  {{- include "deployguard.namespaceSelector" $ctx | trim | nindent 2 }}
{{- with $ctx.Values.webhooks.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with concat $ctx.Values.webhooks.matchConditions .matchConditions }}
matchConditions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Rules for the workload kinds deployguard judges. */}}
{{- define "deployguard.workloadRules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["pods", "replicationcontrollers"]
  scope: Namespaced
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["jobs", "cronjobs"]
  scope: Namespaced
{{- end }}
