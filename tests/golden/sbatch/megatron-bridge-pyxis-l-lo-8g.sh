#!/bin/bash
#SBATCH --job-name=l-lo-8g
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=01:00:00
#SBATCH --output=/scaling/runs/RUN/llama31-8b-data-parallel-lora-g8-tp1-pp1-ep1/slurm-%j.out

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
export SCALING_MEMORY_DIR=/scaling/runs/RUN/llama31-8b-data-parallel-lora-g8-tp1-pp1-ep1/memory
mkdir -p /scaling/cache/torch /scaling/cache/datasets /scaling/cache/hf_cache /scaling/cache/datasets_cache /scaling/cache/triton /scaling/cache/nemo_cache /scaling/runs/RUN/llama31-8b-data-parallel-lora-g8-tp1-pp1-ep1/memory
nvidia-smi --query-gpu=timestamp,index,name,memory.used,memory.total --format=csv,nounits -l 5 > /scaling/runs/RUN/llama31-8b-data-parallel-lora-g8-tp1-pp1-ep1/memory/gpu_memory_log.csv &
GPU_MONITOR_PID=$!
trap 'kill "$GPU_MONITOR_PID" 2>/dev/null' EXIT
echo "==============================="
echo " Job started"
echo " Start time : $(date '+%Y-%m-%d %H:%M:%S')"
echo "==============================="
start_ts=$(date +%s)
srun --kill-on-bad-exit=1 '--container-image=nvcr.io#nvidia/nemo:26.06' --container-mounts=/shared:/shared --container-env=HF_TOKEN python /opt/Megatron-Bridge/scripts/training/run_recipe.py --recipe llama31_8b_peft_config --dataset llm-finetune --seq_length 2048 dataset.dataset_name=squad model.tensor_model_parallel_size=1 model.pipeline_model_parallel_size=1 model.context_parallel_size=1 model.sequence_parallel=false train.train_iters=250 train.global_batch_size=8 train.micro_batch_size=1 validation.eval_iters=10 scheduler.lr_warmup_iters=50 checkpoint.pretrained_checkpoint=/shared/models/megatron-bridge/llama31_8b checkpoint.save=/scaling/runs/RUN/llama31-8b-data-parallel-lora-g8-tp1-pp1-ep1/nemo_log/checkpoints checkpoint.load=null logger.tensorboard_dir=/scaling/runs/RUN/llama31-8b-data-parallel-lora-g8-tp1-pp1-ep1/nemo_log/tb_logs logger.log_throughput=true
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
