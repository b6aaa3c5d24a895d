#!/bin/bash
#SBATCH --job-name=tiny-llama-data-parallel-lora-g2-tp1-pp1-ep1
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --gpus-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
#SBATCH --partition=gpu
#SBATCH --output=/scaling/runs/RUN/tiny-llama-data-parallel-lora-g2-tp1-pp1-ep1/slurm-%j.out

# rendered by scaling-matrix; the job's exit status is srun's
set -uo pipefail
export TORCH_HOME=/scaling/cache/torch
export NEMO_DATASETS_CACHE=/scaling/cache/datasets
export HF_HOME=/scaling/cache/hf_cache
export HF_DATASETS_CACHE=/scaling/cache/datasets_cache
export TRITON_CACHE_DIR=/scaling/cache/triton
export NEMO_HOME=/scaling/cache/nemo_cache
export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
export PYTHONUNBUFFERED=1
export SCALING_MEMORY_DIR=/scaling/runs/RUN/tiny-llama-data-parallel-lora-g2-tp1-pp1-ep1/memory
mkdir -p /scaling/cache/torch /scaling/cache/datasets /scaling/cache/hf_cache /scaling/cache/datasets_cache /scaling/cache/triton /scaling/cache/nemo_cache /scaling/runs/RUN/tiny-llama-data-parallel-lora-g2-tp1-pp1-ep1/memory
# memory: the tiny engine samples its own per-rank CSV into $SCALING_MEMORY_DIR
echo "==============================="
echo " Job started"
echo " Start time : $(date '+%Y-%m-%d %H:%M:%S')"
echo "==============================="
start_ts=$(date +%s)
srun --kill-on-bad-exit=1 python3 -m scaling_matrix.tiny llm finetune --factory tiny_llama --yes trainer.devices=2 trainer.max_steps=40 trainer.limit_val_batches=2 trainer.val_check_interval=20 optim.lr_scheduler.warmup_steps=5 data.global_batch_size=8 resume.restore_config.path=/scaling/models/tiny_llama log.explicit_log_dir=/scaling/runs/RUN/tiny-llama-data-parallel-lora-g2-tp1-pp1-ep1/nemo_log
srun_rc=$?
end_ts=$(date +%s)
total=$((end_ts - start_ts))
echo "==============================="
echo " Job finished"
echo " End time   : $(date '+%Y-%m-%d %H:%M:%S')"
printf " Total time : %02d:%02d:%02d\n" $((total / 3600)) $((total % 3600 / 60)) $((total % 60))
echo " srun exit  : $srun_rc"
echo "==============================="
exit "$srun_rc"
