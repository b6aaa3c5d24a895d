#!/bin/bash
#SBATCH --job-name=m-lo-8g
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=4
#SBATCH --time=01:00:00
#SBATCH --reservation=distributedDL
#SBATCH --constraint=a100,8gpus
#SBATCH --mem=256G
#SBATCH --output=/scaling/runs/RUN/mixtral-8x7b-data-parallel-lora-g8-tp1-pp1-ep8/slurm-%j.out

# rendered by scaling-matrix; the job's exit status is srun's
set -uo pipefail
module load cuda/12.4.1
module load singularity
export TORCH_HOME=/scaling/cache/torch
export NEMO_DATASETS_CACHE=/scaling/cache/datasets
export HF_HOME=/scaling/cache/hf_cache
export HF_DATASETS_CACHE=/scaling/cache/datasets_cache
export TRITON_CACHE_DIR=/scaling/cache/triton
export NEMO_HOME=/scaling/cache/nemo_cache
export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
export PYTHONUNBUFFERED=1
export SCALING_MEMORY_DIR=/scaling/runs/RUN/mixtral-8x7b-data-parallel-lora-g8-tp1-pp1-ep8/memory
mkdir -p /scaling/cache/torch /scaling/cache/datasets /scaling/cache/hf_cache /scaling/cache/datasets_cache /scaling/cache/triton /scaling/cache/nemo_cache /scaling/runs/RUN/mixtral-8x7b-data-parallel-lora-g8-tp1-pp1-ep8/memory
nvidia-smi --query-gpu=timestamp,index,name,memory.used,memory.total --format=csv,nounits -l 5 > /scaling/runs/RUN/mixtral-8x7b-data-parallel-lora-g8-tp1-pp1-ep8/memory/gpu_memory_log.csv &
GPU_MONITOR_PID=$!
trap 'kill "$GPU_MONITOR_PID" 2>/dev/null' EXIT
echo "==============================="
echo " Job started"
echo " Start time : $(date '+%Y-%m-%d %H:%M:%S')"
echo "==============================="
start_ts=$(date +%s)
srun --kill-on-bad-exit=1 singularity exec --nv -B /sw/rl9g:/sw/rl9g /sw/rl9g/dl/workshop/image/nemo_25.07.sif nemo llm finetune --factory mixtral_8x7b --yes trainer.devices=8 trainer.strategy.expert_model_parallel_size=8 trainer.max_steps=250 trainer.limit_val_batches=10 optim.lr_scheduler.warmup_steps=50 data.global_batch_size=8 resume.restore_config.path=/sw/rl9g/dl/workshop/models/mixtral/model log.explicit_log_dir=/scaling/runs/RUN/mixtral-8x7b-data-parallel-lora-g8-tp1-pp1-ep8/nemo_log
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
