-- The tables of an invented PostgreSQL-based HIS ("example-postgres-his"), as example-postgres-his.yaml maps them
-- and example-postgres-his.connector.json captures them. The CDC end-to-end test and `yibao stack up
-- --with-connect` create them in a stand-in HIS database; a real HIS has its own tables and its own mapping.
--
-- The HIS keeps most tables under unquoted (hence lower-case) names; its 医保 request tables were added by
-- another vendor with quoted upper-case names. Ids are NUMERIC, times `timestamp` (microseconds, no zone: the
-- wall-clock time in Asia/Shanghai), money NUMERIC(12,2).
--
-- REPLICA IDENTITY FULL on every captured table: PostgreSQL's default logs only the key of a deleted row and no
-- old row for an update, and the mapping's rules read old values (a cancelled discharge is a deleted row; an
-- admission is cancelled when STATUS changes; a charge line edited or deleted in place is refused). Without it
-- the bridge parks those changes with a reason naming this fix.

CREATE SCHEMA IF NOT EXISTS his;

-- 门诊挂号
CREATE TABLE his.outp_register (
    reg_id          NUMERIC(12, 0) PRIMARY KEY,
    patient_id      VARCHAR(20)  NOT NULL,
    reg_no          VARCHAR(20)  NOT NULL,
    card_type       VARCHAR(2)   NOT NULL,
    card_no         VARCHAR(64),
    card_sn         VARCHAR(32),
    id_type         VARCHAR(2),
    id_no           VARCHAR(32),
    pat_name        VARCHAR(50),
    insur_type      VARCHAR(4),
    med_type        VARCHAR(4)   NOT NULL,
    reg_time        TIMESTAMP    NOT NULL,
    dept_code       VARCHAR(10)  NOT NULL,
    dept_name       VARCHAR(50)  NOT NULL,
    dept_caty       VARCHAR(10),
    doctor_code     VARCHAR(20),
    doctor_name     VARCHAR(50),
    reg_fee         NUMERIC(10, 2),
    reg_type        VARCHAR(4),
    reg_channel     VARCHAR(2),
    pay_mode        VARCHAR(2),
    status          VARCHAR(2)   NOT NULL,
    operator_id     VARCHAR(20),
    operator_name   VARCHAR(50)
);

-- 门诊诊断 (one row per diagnosis, written by the doctor station)
CREATE TABLE his.outp_diagnosis (
    diag_id         NUMERIC(14, 0) PRIMARY KEY,
    reg_id          NUMERIC(12, 0) NOT NULL,
    patient_id      VARCHAR(20)  NOT NULL,
    diag_seq        INTEGER      NOT NULL,
    diag_class      VARCHAR(2)   NOT NULL,
    icd_code        VARCHAR(20)  NOT NULL,
    diag_name       VARCHAR(100) NOT NULL,
    main_flag       VARCHAR(1)   NOT NULL,
    med_type        VARCHAR(4),
    chief_complaint VARCHAR(200),
    dept_code       VARCHAR(10),
    doctor_code     VARCHAR(20),
    doctor_name     VARCHAR(50),
    diag_time       TIMESTAMP    NOT NULL,
    valid_flag      VARCHAR(1)   NOT NULL DEFAULT '1'
);

-- 门诊收费明细 (reversal lines carry init_detail_id and negative qty/amount)
CREATE TABLE his.outp_fee_detail (
    detail_id       NUMERIC(14, 0) PRIMARY KEY,
    reg_id          NUMERIC(12, 0) NOT NULL,
    patient_id      VARCHAR(20)  NOT NULL,
    recipe_no       VARCHAR(30),
    batch_no        VARCHAR(30),
    fee_time        TIMESTAMP    NOT NULL,
    item_code       VARCHAR(50)  NOT NULL,
    item_name       VARCHAR(100),
    yb_code         VARCHAR(50)  NOT NULL,
    amount          NUMERIC(12, 2) NOT NULL,
    qty             NUMERIC(12, 4) NOT NULL,
    price           NUMERIC(14, 6) NOT NULL,
    bill_dept_code  VARCHAR(10),
    bill_dept_name  VARCHAR(50),
    bill_doc_code   VARCHAR(20),
    bill_doc_name   VARCHAR(50),
    init_detail_id  NUMERIC(14, 0),
    settle_flag     VARCHAR(1)   NOT NULL DEFAULT '0',
    memo            VARCHAR(200),
    operator_id     VARCHAR(20),
    operator_name   VARCHAR(50)
);

-- 住院登记 (取消入院: status '9')
CREATE TABLE his.inp_admission (
    adm_id          NUMERIC(12, 0) PRIMARY KEY,
    patient_id      VARCHAR(20)  NOT NULL,
    inpatient_no    VARCHAR(20)  NOT NULL,
    card_type       VARCHAR(2)   NOT NULL,
    card_no         VARCHAR(64),
    card_sn         VARCHAR(32),
    id_type         VARCHAR(2),
    id_no           VARCHAR(32),
    pat_name        VARCHAR(50),
    insur_type      VARCHAR(4),
    med_type        VARCHAR(4)   NOT NULL,
    adm_time        TIMESTAMP    NOT NULL,
    adm_dept_code   VARCHAR(10)  NOT NULL,
    adm_dept_name   VARCHAR(50)  NOT NULL,
    bed_no          VARCHAR(10),
    attend_doc_code VARCHAR(20),
    attend_doc_name VARCHAR(50),
    adm_diag_code   VARCHAR(20),
    adm_diag_name   VARCHAR(100),
    pay_mode        VARCHAR(2),
    status          VARCHAR(2)   NOT NULL,
    update_time     TIMESTAMP,
    operator_id     VARCHAR(20),
    operator_name   VARCHAR(50)
);

-- 住院费用明细
CREATE TABLE his.inp_fee_detail (
    detail_id       NUMERIC(14, 0) PRIMARY KEY,
    adm_id          NUMERIC(12, 0) NOT NULL,
    patient_id      VARCHAR(20)  NOT NULL,
    med_type        VARCHAR(4),
    fee_time        TIMESTAMP    NOT NULL,
    item_code       VARCHAR(50)  NOT NULL,
    item_name       VARCHAR(100),
    yb_code         VARCHAR(50)  NOT NULL,
    amount          NUMERIC(12, 2) NOT NULL,
    qty             NUMERIC(12, 4) NOT NULL,
    price           NUMERIC(14, 6) NOT NULL,
    bill_dept_code  VARCHAR(10),
    bill_dept_name  VARCHAR(50),
    bill_doc_code   VARCHAR(20),
    bill_doc_name   VARCHAR(50),
    init_detail_id  NUMERIC(14, 0),
    settle_flag     VARCHAR(1)   NOT NULL DEFAULT '0',
    memo            VARCHAR(200),
    operator_id     VARCHAR(20),
    operator_name   VARCHAR(50)
);

-- 出院登记 (取消出院 deletes the row)
CREATE TABLE his.inp_discharge (
    dscg_id         NUMERIC(12, 0) PRIMARY KEY,
    adm_id          NUMERIC(12, 0) NOT NULL,
    patient_id      VARCHAR(20)  NOT NULL,
    dscg_time       TIMESTAMP    NOT NULL,
    dscg_dept_code  VARCHAR(10),
    dscg_dept_name  VARCHAR(50),
    dscg_way        VARCHAR(2)   NOT NULL,
    main_diag_code  VARCHAR(20),
    main_diag_name  VARCHAR(100),
    doctor_code     VARCHAR(20),
    doctor_name     VARCHAR(50),
    die_date        DATE,
    operator_id     VARCHAR(20),
    operator_name   VARCHAR(50)
);

-- 医保结算申请 and 医保退费申请: the other vendor's tables, quoted upper-case names
CREATE TABLE his."YB_SETTLE_REQUEST" (
    "REQ_ID"        NUMERIC(12, 0) PRIMARY KEY,
    "VISIT_ID"      NUMERIC(12, 0) NOT NULL,
    "VISIT_TYPE"    VARCHAR(1)   NOT NULL,
    "PATIENT_ID"    VARCHAR(20)  NOT NULL,
    "REQ_TIME"      TIMESTAMP    NOT NULL,
    "ACCT_USED"     VARCHAR(1),
    "MID_SETL"      VARCHAR(1),
    "INVOICE_NO"    VARCHAR(30),
    "TOTAL_AMT"     NUMERIC(12, 2) NOT NULL,
    "CARD_TYPE"     VARCHAR(2),
    "CARD_NO"       VARCHAR(64),
    "INSUR_TYPE"    VARCHAR(4),
    "OPERATOR_ID"   VARCHAR(20),
    "OPERATOR_NAME" VARCHAR(50)
);

CREATE TABLE his."YB_REFUND_REQUEST" (
    "REQ_ID"        NUMERIC(12, 0) PRIMARY KEY,
    "VISIT_ID"      NUMERIC(12, 0) NOT NULL,
    "VISIT_TYPE"    VARCHAR(1)   NOT NULL,
    "PATIENT_ID"    VARCHAR(20)  NOT NULL,
    "REQ_TIME"      TIMESTAMP    NOT NULL,
    "SETTLE_REQ_ID" NUMERIC(12, 0) NOT NULL,
    "REASON"        VARCHAR(200),
    "OPERATOR_ID"   VARCHAR(20),
    "OPERATOR_NAME" VARCHAR(50)
);

-- 医保撤销申请 (退号 / 取消入院 / 取消出院 at the 医保 desk)
CREATE TABLE his.yb_cancel_request (
    req_id          NUMERIC(12, 0) PRIMARY KEY,
    visit_id        NUMERIC(12, 0) NOT NULL,
    visit_type      VARCHAR(1)   NOT NULL,
    patient_id      VARCHAR(20)  NOT NULL,
    req_time        TIMESTAMP    NOT NULL,
    cancel_type     VARCHAR(4)   NOT NULL,
    reason          VARCHAR(200),
    operator_id     VARCHAR(20),
    operator_name   VARCHAR(50)
);

ALTER TABLE his.outp_register REPLICA IDENTITY FULL;
ALTER TABLE his.outp_diagnosis REPLICA IDENTITY FULL;
ALTER TABLE his.outp_fee_detail REPLICA IDENTITY FULL;
ALTER TABLE his.inp_admission REPLICA IDENTITY FULL;
ALTER TABLE his.inp_fee_detail REPLICA IDENTITY FULL;
ALTER TABLE his.inp_discharge REPLICA IDENTITY FULL;
ALTER TABLE his."YB_SETTLE_REQUEST" REPLICA IDENTITY FULL;
ALTER TABLE his."YB_REFUND_REQUEST" REPLICA IDENTITY FULL;
ALTER TABLE his.yb_cancel_request REPLICA IDENTITY FULL;
