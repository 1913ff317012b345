-- Upstream Kubernetes reference data: minor releases (release and end-of-life dates) and the
-- API versions each minor stopped serving. Read by cluster_support and api_removal_readiness
-- (sql/schema/analytics/). After the first release, correct or extend it with a migration in
-- sql/migrations/ (UPDATE/INSERT ... ON CONFLICT) and add a reference_source row saying when;
-- change the rows below in the same commit, so that a new database gets the same data.
--
-- Sources, taken on 2026-11-27 from the Kubernetes project's own release record:
--   releases     https://kubernetes.io/releases/  and  https://kubernetes.io/releases/1.NN/
--                https://github.com/kubernetes/website/blob/main/data/releases/eol.yaml
--                    (endOfLifeDate of every branch that has shipped its final patch: the
--                    actual end-of-life date, which can differ from the planned one, e.g.
--                    1.31 planned 2025-10-28, actual 2025-11-11)
--                https://github.com/kubernetes/website/blob/main/data/releases/schedule.yaml
--                    (planned endOfLifeDate and releaseDate of the active branches)
--                https://github.com/kubernetes/website/blob/main/data/releases/dates.json
--                    and legacy.json (v1.N.0 release dates up to 1.19, UTC)
--                https://github.com/kubernetes/website/blob/main/data/releases/releases.yaml
--   removals     https://kubernetes.io/docs/reference/using-api/deprecation-guide/
--                (content/en/docs/reference/using-api/deprecation-guide.md, sections
--                "Removed APIs by release" v1.16 .. v1.32; no later section exists yet)
--
-- end_of_life_kind says which date end_of_life holds: 'actual' once the project recorded the
-- final patch (eol.yaml), 'planned' otherwise. 1.32, 1.33 and 1.34 have passed their planned
-- date, but the copies of the release record available when this was taken did not yet list
-- their final patch, so they keep the planned date: update them in a later migration.
-- 1.0 and 1.1 predate the project's end-of-life record: their end_of_life is NULL (unknown).

CREATE TABLE inventory.reference_source (
    source_id    text PRIMARY KEY,
    description  text NOT NULL,
    urls         text[] NOT NULL,
    taken_on     date NOT NULL,
    migration    text NOT NULL
);
COMMENT ON TABLE inventory.reference_source IS
    'Where each set of reference data comes from and when it was taken (one row per update).';

CREATE TABLE inventory.kubernetes_release (
    major_version     int NOT NULL DEFAULT 1,
    minor_version     int NOT NULL,
    release           text GENERATED ALWAYS AS (major_version || '.' || minor_version) STORED,
    released_on       date NOT NULL,
    end_of_life       date,
    end_of_life_kind  text CHECK (end_of_life_kind IN ('actual', 'planned')),
    final_patch       text,                 -- last patch release, once known
    source_id         text NOT NULL REFERENCES inventory.reference_source (source_id),
    PRIMARY KEY (major_version, minor_version),
    CHECK ((end_of_life IS NULL) = (end_of_life_kind IS NULL))
);
COMMENT ON TABLE inventory.kubernetes_release IS
    'Upstream Kubernetes minor releases: release date and end-of-life date (actual or planned).';

CREATE TABLE inventory.kubernetes_api_removal (
    api_group         text NOT NULL,        -- '' for the core group
    api_version       text NOT NULL,
    resource          text NOT NULL,
    kind              text NOT NULL,
    removed_in_minor  int NOT NULL,         -- first 1.N release that no longer serves it
    replacement       text,                 -- group/version to migrate to
    source_id         text NOT NULL REFERENCES inventory.reference_source (source_id),
    PRIMARY KEY (api_group, api_version, resource)
);
COMMENT ON TABLE inventory.kubernetes_api_removal IS
    'API versions removed upstream, per (group, version, resource), from the deprecation guide.';

INSERT INTO inventory.reference_source (source_id, description, urls, taken_on, migration) VALUES
('k8s-releases-2026-11-27',
 'Kubernetes minor releases: v1.N.0 release dates and end-of-life dates (actual from eol.yaml, '
 'else planned from schedule.yaml / kubernetes.io/releases/1.N)',
 ARRAY['https://kubernetes.io/releases/',
       'https://github.com/kubernetes/website/blob/main/data/releases/eol.yaml',
       'https://github.com/kubernetes/website/blob/main/data/releases/schedule.yaml',
       'https://github.com/kubernetes/website/blob/main/data/releases/dates.json',
       'https://github.com/kubernetes/website/blob/main/data/releases/legacy.json',
       'https://github.com/kubernetes/website/blob/main/data/releases/releases.yaml'],
 DATE '2026-11-27', '0010'),
('k8s-deprecation-guide-2026-11-27',
 'Deprecated API Migration Guide, "Removed APIs by release" (v1.16 to v1.32)',
 ARRAY['https://kubernetes.io/docs/reference/using-api/deprecation-guide/',
       'https://github.com/kubernetes/website/blob/main/content/en/docs/reference/using-api/deprecation-guide.md'],
 DATE '2026-11-27', '0010');

INSERT INTO inventory.kubernetes_release
    (minor_version, released_on, end_of_life, end_of_life_kind, final_patch, source_id)
SELECT m, r::date, e::date, k, f, 'k8s-releases-2026-11-27'
FROM (VALUES
    ( 0, '2015-07-10', NULL,         NULL,      NULL),
    ( 1, '2015-11-09', NULL,         NULL,      NULL),
    ( 2, '2016-03-16', '2016-10-23', 'actual',  '1.2.7'),
    ( 3, '2016-07-01', '2016-11-01', 'actual',  '1.3.10'),
    ( 4, '2016-09-26', '2017-04-21', 'actual',  '1.4.12'),
    ( 5, '2016-12-13', '2017-10-01', 'actual',  '1.5.8'),
    ( 6, '2017-03-28', '2017-11-23', 'actual',  '1.6.13'),
    ( 7, '2017-06-30', '2018-04-04', 'actual',  '1.7.16'),
    ( 8, '2017-09-29', '2018-07-12', 'actual',  '1.8.15'),
    ( 9, '2017-12-15', '2018-09-29', 'actual',  '1.9.11'),
    (10, '2018-03-26', '2019-02-13', 'actual',  '1.10.13'),
    (11, '2018-06-27', '2019-05-01', 'actual',  '1.11.10'),
    (12, '2018-09-27', '2019-07-08', 'actual',  '1.12.10'),
    (13, '2018-12-03', '2019-10-15', 'actual',  '1.13.12'),
    (14, '2019-03-25', '2019-12-11', 'actual',  '1.14.10'),
    (15, '2019-06-19', '2020-05-06', 'actual',  '1.15.12'),
    (16, '2019-09-18', '2020-09-02', 'actual',  '1.16.15'),
    (17, '2019-12-09', '2021-01-13', 'actual',  '1.17.17'),
    (18, '2020-03-25', '2021-06-18', 'actual',  '1.18.20'),
    (19, '2020-08-26', '2021-10-28', 'actual',  '1.19.16'),
    (20, '2020-12-08', '2022-02-28', 'actual',  '1.20.15'),
    (21, '2021-04-08', '2022-06-28', 'actual',  '1.21.14'),
    (22, '2021-08-04', '2022-12-08', 'actual',  '1.22.17'),
    (23, '2021-12-07', '2023-02-28', 'actual',  '1.23.17'),
    (24, '2022-05-03', '2023-07-28', 'actual',  '1.24.17'),
    (25, '2022-08-23', '2023-10-28', 'actual',  '1.25.16'),
    (26, '2022-12-08', '2024-02-28', 'actual',  '1.26.15'),
    (27, '2023-04-11', '2024-07-16', 'actual',  '1.27.16'),
    (28, '2023-08-15', '2024-10-22', 'actual',  '1.28.15'),
    (29, '2023-12-13', '2025-02-28', 'actual',  '1.29.14'),
    (30, '2024-04-17', '2025-07-15', 'actual',  '1.30.14'),
    (31, '2024-08-13', '2025-11-11', 'actual',  '1.31.14'),
    (32, '2024-12-11', '2026-02-28', 'planned', NULL),
    (33, '2025-04-23', '2026-06-28', 'planned', NULL),
    (34, '2025-08-27', '2026-10-27', 'planned', NULL),
    (35, '2025-12-17', '2027-02-28', 'planned', NULL),
    (36, '2026-04-22', '2027-06-28', 'planned', NULL),
    (37, '2026-08-26', '2027-10-28', 'planned', NULL)
) AS t (m, r, e, k, f);

INSERT INTO inventory.kubernetes_api_removal
    (api_group, api_version, resource, kind, removed_in_minor, replacement, source_id)
SELECT g, v, r, k, m, rep, 'k8s-deprecation-guide-2026-11-27'
FROM (VALUES
    -- v1.32
    ('flowcontrol.apiserver.k8s.io', 'v1beta3', 'flowschemas',                     'FlowSchema',                     32, 'flowcontrol.apiserver.k8s.io/v1'),
    ('flowcontrol.apiserver.k8s.io', 'v1beta3', 'prioritylevelconfigurations',     'PriorityLevelConfiguration',     32, 'flowcontrol.apiserver.k8s.io/v1'),
    -- v1.29
    ('flowcontrol.apiserver.k8s.io', 'v1beta2', 'flowschemas',                     'FlowSchema',                     29, 'flowcontrol.apiserver.k8s.io/v1'),
    ('flowcontrol.apiserver.k8s.io', 'v1beta2', 'prioritylevelconfigurations',     'PriorityLevelConfiguration',     29, 'flowcontrol.apiserver.k8s.io/v1'),
    -- v1.27
    ('storage.k8s.io',               'v1beta1', 'csistoragecapacities',            'CSIStorageCapacity',             27, 'storage.k8s.io/v1'),
    -- v1.26
    ('flowcontrol.apiserver.k8s.io', 'v1beta1', 'flowschemas',                     'FlowSchema',                     26, 'flowcontrol.apiserver.k8s.io/v1beta3'),
    ('flowcontrol.apiserver.k8s.io', 'v1beta1', 'prioritylevelconfigurations',     'PriorityLevelConfiguration',     26, 'flowcontrol.apiserver.k8s.io/v1beta3'),
    ('autoscaling',                  'v2beta2', 'horizontalpodautoscalers',        'HorizontalPodAutoscaler',        26, 'autoscaling/v2'),
    -- v1.25
    ('batch',                        'v1beta1', 'cronjobs',                        'CronJob',                        25, 'batch/v1'),
    ('discovery.k8s.io',             'v1beta1', 'endpointslices',                  'EndpointSlice',                  25, 'discovery.k8s.io/v1'),
    ('events.k8s.io',                'v1beta1', 'events',                          'Event',                          25, 'events.k8s.io/v1'),
    ('autoscaling',                  'v2beta1', 'horizontalpodautoscalers',        'HorizontalPodAutoscaler',        25, 'autoscaling/v2'),
    ('policy',                       'v1beta1', 'poddisruptionbudgets',            'PodDisruptionBudget',            25, 'policy/v1'),
    ('policy',                       'v1beta1', 'podsecuritypolicies',             'PodSecurityPolicy',              25, NULL),
    ('node.k8s.io',                  'v1beta1', 'runtimeclasses',                  'RuntimeClass',                   25, 'node.k8s.io/v1'),
    -- v1.22
    ('admissionregistration.k8s.io', 'v1beta1', 'mutatingwebhookconfigurations',   'MutatingWebhookConfiguration',   22, 'admissionregistration.k8s.io/v1'),
    ('admissionregistration.k8s.io', 'v1beta1', 'validatingwebhookconfigurations', 'ValidatingWebhookConfiguration', 22, 'admissionregistration.k8s.io/v1'),
    ('apiextensions.k8s.io',         'v1beta1', 'customresourcedefinitions',       'CustomResourceDefinition',       22, 'apiextensions.k8s.io/v1'),
    ('apiregistration.k8s.io',       'v1beta1', 'apiservices',                     'APIService',                     22, 'apiregistration.k8s.io/v1'),
    ('authentication.k8s.io',        'v1beta1', 'tokenreviews',                    'TokenReview',                    22, 'authentication.k8s.io/v1'),
    ('authorization.k8s.io',         'v1beta1', 'localsubjectaccessreviews',       'LocalSubjectAccessReview',       22, 'authorization.k8s.io/v1'),
    ('authorization.k8s.io',         'v1beta1', 'selfsubjectaccessreviews',        'SelfSubjectAccessReview',        22, 'authorization.k8s.io/v1'),
    ('authorization.k8s.io',         'v1beta1', 'subjectaccessreviews',            'SubjectAccessReview',            22, 'authorization.k8s.io/v1'),
    ('authorization.k8s.io',         'v1beta1', 'selfsubjectrulesreviews',         'SelfSubjectRulesReview',         22, 'authorization.k8s.io/v1'),
    ('certificates.k8s.io',          'v1beta1', 'certificatesigningrequests',      'CertificateSigningRequest',      22, 'certificates.k8s.io/v1'),
    ('coordination.k8s.io',          'v1beta1', 'leases',                          'Lease',                          22, 'coordination.k8s.io/v1'),
    ('extensions',                   'v1beta1', 'ingresses',                       'Ingress',                        22, 'networking.k8s.io/v1'),
    ('networking.k8s.io',            'v1beta1', 'ingresses',                       'Ingress',                        22, 'networking.k8s.io/v1'),
    ('networking.k8s.io',            'v1beta1', 'ingressclasses',                  'IngressClass',                   22, 'networking.k8s.io/v1'),
    ('rbac.authorization.k8s.io',    'v1beta1', 'clusterroles',                    'ClusterRole',                    22, 'rbac.authorization.k8s.io/v1'),
    ('rbac.authorization.k8s.io',    'v1beta1', 'clusterrolebindings',             'ClusterRoleBinding',             22, 'rbac.authorization.k8s.io/v1'),
    ('rbac.authorization.k8s.io',    'v1beta1', 'roles',                           'Role',                           22, 'rbac.authorization.k8s.io/v1'),
    ('rbac.authorization.k8s.io',    'v1beta1', 'rolebindings',                    'RoleBinding',                    22, 'rbac.authorization.k8s.io/v1'),
    ('scheduling.k8s.io',            'v1beta1', 'priorityclasses',                 'PriorityClass',                  22, 'scheduling.k8s.io/v1'),
    ('storage.k8s.io',               'v1beta1', 'csidrivers',                      'CSIDriver',                      22, 'storage.k8s.io/v1'),
    ('storage.k8s.io',               'v1beta1', 'csinodes',                        'CSINode',                        22, 'storage.k8s.io/v1'),
    ('storage.k8s.io',               'v1beta1', 'storageclasses',                  'StorageClass',                   22, 'storage.k8s.io/v1'),
    ('storage.k8s.io',               'v1beta1', 'volumeattachments',               'VolumeAttachment',               22, 'storage.k8s.io/v1'),
    -- v1.16
    ('extensions',                   'v1beta1', 'networkpolicies',                 'NetworkPolicy',                  16, 'networking.k8s.io/v1'),
    ('extensions',                   'v1beta1', 'podsecuritypolicies',             'PodSecurityPolicy',              16, 'policy/v1beta1'),
    ('extensions',                   'v1beta1', 'daemonsets',                      'DaemonSet',                      16, 'apps/v1'),
    ('apps',                         'v1beta2', 'daemonsets',                      'DaemonSet',                      16, 'apps/v1'),
    ('extensions',                   'v1beta1', 'deployments',                     'Deployment',                     16, 'apps/v1'),
    ('apps',                         'v1beta1', 'deployments',                     'Deployment',                     16, 'apps/v1'),
    ('apps',                         'v1beta2', 'deployments',                     'Deployment',                     16, 'apps/v1'),
    ('apps',                         'v1beta1', 'statefulsets',                    'StatefulSet',                    16, 'apps/v1'),
    ('apps',                         'v1beta2', 'statefulsets',                    'StatefulSet',                    16, 'apps/v1'),
    ('extensions',                   'v1beta1', 'replicasets',                     'ReplicaSet',                     16, 'apps/v1'),
    ('apps',                         'v1beta1', 'replicasets',                     'ReplicaSet',                     16, 'apps/v1'),
    ('apps',                         'v1beta2', 'replicasets',                     'ReplicaSet',                     16, 'apps/v1')
) AS t (g, v, r, k, m, rep);
