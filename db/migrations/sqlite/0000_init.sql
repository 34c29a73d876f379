CREATE TABLE `checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`job_id` text NOT NULL,
	`step` integer NOT NULL,
	`uri` text NOT NULL,
	`bytes` integer NOT NULL,
	`sha256` text,
	`kind` text DEFAULT 'directory' NOT NULL,
	`files` text NOT NULL,
	`metrics` text NOT NULL,
	`is_best` integer DEFAULT false NOT NULL,
	`status` text NOT NULL,
	`failure_reason` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`uploaded_at` integer,
	`committed_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `checkpoints_job_uri_idx` ON `checkpoints` (`job_id`,`uri`);--> statement-breakpoint
CREATE INDEX `checkpoints_job_status_step_idx` ON `checkpoints` (`job_id`,`status`,`step`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`study_id` text,
	`trial_number` integer,
	`spec` text NOT NULL,
	`status` text NOT NULL,
	`error` text,
	`final_metrics` text,
	`resumes` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`started_at` integer,
	`ended_at` integer
);
--> statement-breakpoint
CREATE INDEX `jobs_study_idx` ON `jobs` (`study_id`,`trial_number`);--> statement-breakpoint
CREATE INDEX `jobs_status_idx` ON `jobs` (`status`);--> statement-breakpoint
CREATE TABLE `studies` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`spec` text NOT NULL,
	`objective_metric` text NOT NULL,
	`direction` text NOT NULL,
	`status` text NOT NULL,
	`stop_reason` text,
	`best_trial_number` integer,
	`best_value` real,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`ended_at` integer
);
--> statement-breakpoint
CREATE TABLE `trial_values` (
	`study_id` text NOT NULL,
	`trial_number` integer NOT NULL,
	`step` integer NOT NULL,
	`value` real NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`study_id`, `trial_number`, `step`)
);
--> statement-breakpoint
CREATE INDEX `trial_values_study_step_idx` ON `trial_values` (`study_id`,`step`);--> statement-breakpoint
CREATE TABLE `trials` (
	`study_id` text NOT NULL,
	`number` integer NOT NULL,
	`params` text NOT NULL,
	`state` text NOT NULL,
	`value` real,
	`job_id` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`started_at` integer,
	`ended_at` integer,
	PRIMARY KEY(`study_id`, `number`)
);
--> statement-breakpoint
CREATE INDEX `trials_study_state_value_idx` ON `trials` (`study_id`,`state`,`value`);